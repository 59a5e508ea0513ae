"""Generate a method's DreamBench images and score them (CLIP-T, CLIP-I, DINO); the scorers are loaded
once and shared by every method compared."""
import os

import torch
from PIL import Image
from tqdm.auto import tqdm

from mmagic_vico.registry import MODELS
from mmagic_vico.utils.atomic import atomic_save_image
from mmagic_vico.utils.errors import InvalidValueError, MissingFileError
from mmagic_vico.utils.image import list_images
from mmagic_vico.utils.manifest import claim, file_sha256, plain, reusable_image
from .dreambench import read_dreambench
from .metrics import ImageEmbedder, TextImageScorer, mean_pairwise_cosine

METRICS = ('CLIP-T', 'CLIP-I', 'DINO')
TINY_SD, TINY_CLIP, TINY_DINO = (os.path.join('data', name) for name in ('tiny_sd15', 'tiny_clip', 'tiny_dino'))
FIX = 'Give this run another --out-dir, or delete that folder to generate its images again.'


def default_backbones(clip: str = TINY_CLIP, dino: str = TINY_DINO) -> tuple:
    """The scorers' folders; the tiny offline CLIP / DINO are built on first use when asked for."""
    from mmagic_vico.models.tiny_sd import build_tiny_clip, build_tiny_dino, ensure_tiny_sd
    if clip == TINY_CLIP and not os.path.isdir(TINY_CLIP):
        ensure_tiny_sd(TINY_SD)
        build_tiny_clip(TINY_CLIP, TINY_SD)
    if dino == TINY_DINO and not os.path.isdir(TINY_DINO):
        build_tiny_dino(TINY_DINO)
    return clip, dino


class DreamBenchEvaluator:
    """The DreamBench protocol (``prompts_and_classes.txt`` of ``dreambench``) with its scorers.

    For each subject: its 25 prompts x ``num_images`` images, seeds fixed per image (prompt ``p``,
    image ``k``: ``seed + 1000 p + k``), images already on disk reused (an interrupted run resumes) when
    their folder's manifest says the same config, weights (hash) and sampler made them; CLIP-T against
    the prompts without the unique token, CLIP-I and DINO against the real photos.
    """

    def __init__(self, dreambench: str, clip: str, dino: str):
        self.root, self.protocol = dreambench, read_dreambench(dreambench)
        self.clip_t, self.dino = TextImageScorer(clip), ImageEmbedder(dino, 'dino')

    @torch.no_grad()
    def generate(self, model, subject: str, folder: str, num_images: int = 4, seed: int = 0, **sampling) -> list:
        """Generate (or reuse) the prompt-major images ``{p:02d}_{k:02d}.png`` of ``subject``."""
        token = getattr(model, 'placeholder', None) or 'sks'
        reference = list_images(os.path.join(self.root, subject))[0]
        extra = dict(image_reference=reference) if model.needs_reference else {}
        os.makedirs(folder, exist_ok=True)
        paths = []
        for p, prompt in enumerate(tqdm(self.protocol.prompts(subject, token), desc=f'{subject}: generating')):
            for k in range(num_images):
                path = os.path.join(folder, f'{p:02d}_{k:02d}.png')
                if not reusable_image(path):  # missing, or truncated (made again, named in a warning)
                    image = model.infer(prompt, seed=seed + p * 1000 + k, show_progress=False, **sampling,
                                        **extra)['samples'][0]
                    atomic_save_image(path, image)  # never half an image to reuse
                paths.append(path)
        return paths

    @torch.no_grad()
    def score(self, subject: str, paths: list, num_images: int) -> dict:
        generated = [Image.open(p) for p in paths]
        real = [Image.open(p) for p in list_images(os.path.join(self.root, subject))]
        texts = [t for t in self.protocol.text_prompts(subject) for _ in range(num_images)]
        generated_clip = self.clip_t.images(generated)  # encoded once, for CLIP-T and CLIP-I
        return {'CLIP-T': self.clip_t.score(generated_clip, texts).mean().item(),
                'CLIP-I': mean_pairwise_cosine(generated_clip, self.clip_t.images(real)),
                'DINO': mean_pairwise_cosine(self.dino(generated), self.dino(real)),
                'images': len(paths)}

    def evaluate(self, model_cfg, subjects: list, out_dir: str, weights: str | None = None, num_images: int = 4,
                 seed: int = 0, **sampling) -> dict:
        """Scores of one method (``model_cfg`` + ``weights``, where '{subject}' names each subject's
        file) per subject and overall; images under ``out_dir/<subject>``."""
        self.check(model_cfg, subjects, out_dir, weights, seed=seed, **sampling)
        model = MODELS.build(model_cfg).eval()  # built once; each subject's weights replace every trainable tensor
        results = {}
        for subject in subjects:
            if weights:
                model.load_weights(subject_weights(weights, subject))
            paths = self.generate(model, subject, os.path.join(out_dir, subject), num_images, seed, **sampling)
            results[subject] = self.score(subject, paths, num_images)
        del model
        overall = {k: sum(r[k] for r in results.values()) / len(results) for k in METRICS}
        return dict(subjects=results, overall=overall)

    def check(self, model_cfg, subjects: list, out_dir: str, weights: str | None = None, num_images: int = 4,
              seed: int = 0, **sampling) -> None:
        """Before any image: the subjects are DreamBench's, each one's weights exist, and images already in its
        folder were made by this config, these weights and this sampler (else their scores would be reported
        as this run's). More images per prompt may be added to a folder: image k is seeded alike."""
        unknown = [s for s in subjects if s not in self.protocol.classes]
        if unknown:
            raise InvalidValueError(f'--subjects {unknown} are not in {self.root}/prompts_and_classes.txt; '
                                    f'give subjects it lists: {sorted(self.protocol.classes)}')
        for subject in subjects:
            path = subject_weights(weights, subject) if weights else None
            record = dict(what='DreamBench images', subject=subject, model=plain(model_cfg), seed=seed,
                          sampling=plain(sampling), weights_sha256=file_sha256(path) if path else None)
            claim(os.path.join(out_dir, subject), record, 'DreamBench images', FIX)


def subject_weights(weights: str, subject: str) -> str:
    """The weights file of ``subject``: ``weights`` with '{subject}' replaced, checked to exist."""
    try:
        path = weights.format(subject=subject)
    except (KeyError, IndexError, ValueError) as err:
        raise InvalidValueError(f'--weights {weights!r}: its only field may be {{subject}} (the subject\'s name); '
                                f'found {err}.') from None
    if not os.path.isfile(path):
        raise MissingFileError(f'--weights {weights!r}: {path!r} (subject {subject}) does not exist; train that '
                               'subject first, or give the file of its trained weights.')
    return path


def scores_table(rows: dict, first: str = 'subject') -> str:
    """A markdown table of ``{row name: {metric: value}}``."""
    lines = [f'| {first} | ' + ' | '.join(METRICS) + ' |', '|---' * (len(METRICS) + 1) + '|']
    lines += [f'| {name} | ' + ' | '.join(f'{r[k]:.3f}' for k in METRICS) + ' |' for name, r in rows.items()]
    return '\n'.join(lines)
