"""Generate a method's DreamBench images and score them (CLIP-T, CLIP-I, DINO, and a toy benchmark's own
pixel scorers when its folder names them); the scorers are loaded once and shared by every method compared."""
import os

import torch
from PIL import Image
from tqdm.auto import tqdm

from mmagic_vico.registry import MODELS
from mmagic_vico.toyworld.fidelity import TOY_METRICS, ToyFidelity
from mmagic_vico.utils.atomic import atomic_save_image
from mmagic_vico.utils.errors import InvalidValueError, MissingFileError
from mmagic_vico.utils.image import list_images, make_grid
from mmagic_vico.utils.manifest import claim, plain, reusable_image, weights_sha256

from .batching import generation_calls, image_name, image_seed
from .dreambench import read_dreambench
from .metrics import ImageEmbedder, TextImageScorer, mean_pairwise_cosine

#: the table's columns, in order: DreamBench's, then the toy DreamBench's pixel figures
METRICS = ('CLIP-T', 'CLIP-I', 'DINO') + TOY_METRICS
TINY_SD, TINY_CLIP, TINY_DINO = (os.path.join('data', name) for name in ('tiny_sd15', 'tiny_clip', 'tiny_dino'))
FIX = 'Give this run another --out-dir, or delete that folder to generate its images again.'
#: How an image comes from its seed, recorded with the images: cached images of an older way (one generator
#: per call, ViCo's reference latent sampled from the VAE posterior) are not the images this code makes.
GENERATION = 'one generator per image, seed + 1000 p + k; ViCo reference latent: VAE posterior mean'


def default_backbones(clip: str = TINY_CLIP, dino: str = TINY_DINO) -> tuple:
    """The scorers' folders; the tiny offline CLIP / DINO are built on first use when asked for."""
    from mmagic_vico.models.tiny_sd import build_tiny_clip, build_tiny_dino, ensure_tiny_sd
    if clip == TINY_CLIP and not os.path.isdir(TINY_CLIP):
        ensure_tiny_sd(TINY_SD)
        build_tiny_clip(TINY_CLIP, TINY_SD)
    if dino == TINY_DINO and not os.path.isdir(TINY_DINO):
        build_tiny_dino(TINY_DINO)
    return clip, dino


def thumbnails(paths: list, side: int = 256) -> list:
    """The images of ``paths``, each shrunk to fit ``side`` x ``side`` px (never enlarged)."""
    images = []
    for path in paths:
        with Image.open(path) as image:
            image.thumbnail((side, side))
            images.append(image.convert('RGB'))
    return images


class DreamBenchEvaluator:
    """The DreamBench protocol (``prompts_and_classes.txt`` of ``dreambench``) with its scorers.

    For each subject: its prompts (25 in DreamBench) x ``num_images`` images, seeds fixed per image (prompt ``p``,
    image ``k``: ``seed + 1000 p + k``), ``batch_size`` images per ``infer`` call (one seed each, so the
    images are those of one-image calls), images already on disk reused (an interrupted run resumes) when
    their folder's manifest says the same config, weights (hash) and sampler made them; CLIP-T against
    the prompts without the unique token, CLIP-I and DINO against the real photos;
    on a benchmark whose folder names pixel scorers (``scorers.json``, the toy DreamBench) also context,
    subject, subject-cos and copy (mmagic_vico/toyworld/fidelity.py).
    """

    def __init__(self, dreambench: str, clip: str, dino: str, device: str = 'cpu'):
        self.root, self.protocol, self.device = dreambench, read_dreambench(dreambench), device
        self.clip_t, self.dino = TextImageScorer(clip, device), ImageEmbedder(dino, 'dino', device)
        self.toy = ToyFidelity.from_benchmark(dreambench)

    @torch.no_grad()
    def generate(self, model, subject: str, folder: str, num_images: int = 4, seed: int = 0, batch_size: int = 8,
                 calls=None, **sampling) -> list:
        """Generate (or reuse) the prompt-major images ``{p:02d}_{k:02d}.png`` of ``subject``; returns all
        their paths. ``calls``: only these of :func:`generation_calls` (a process's share). Once every image
        exists, their contact sheet ``grid.png`` (a row per prompt, written under it; tiles of at most 256 px)."""
        prompts = self.protocol.prompts(subject, model.prompt_token)
        reference = list_images(os.path.join(self.root, subject))[0]
        extra = dict(image_reference=reference) if model.needs_reference else {}
        os.makedirs(folder, exist_ok=True)
        if calls is None:
            calls = generation_calls(len(prompts), num_images, batch_size)
        for call in tqdm(calls, desc=f'{subject}: generating'):
            paths = [os.path.join(folder, image_name(p, k)) for p, k in call.items()]
            # missing, or truncated (made again, named in a warning)
            todo = [not reusable_image(path) for path in paths]
            if not any(todo):
                continue
            # the whole call even when some of its images exist (one interrupted half-way): the same batch
            # makes the same bits; only the missing files are written
            samples = model.infer([prompts[p] for p in call.prompts], num_images_per_prompt=len(call.images),
                                  seed=[image_seed(seed, p, k) for p, k in call.items()], show_progress=False,
                                  **sampling, **extra)['samples']
            for path, image, make in zip(paths, samples, todo):
                if make:
                    atomic_save_image(path, image)  # never half an image to reuse
        paths = [os.path.join(folder, image_name(p, k)) for p in range(len(prompts)) for k in range(num_images)]
        if all(os.path.exists(path) for path in paths):
            atomic_save_image(os.path.join(folder, 'grid.png'), make_grid(thumbnails(paths), num_images, prompts))
        return paths

    @torch.no_grad()
    def score(self, subject: str, paths: list, num_images: int) -> dict:
        generated = [Image.open(p) for p in paths]
        real = [Image.open(p) for p in list_images(os.path.join(self.root, subject))]
        texts = [t for t in self.protocol.text_prompts(subject) for _ in range(num_images)]
        generated_clip = self.clip_t.images(generated)  # encoded once, for CLIP-T and CLIP-I
        scores = {'CLIP-T': self.clip_t.score(generated_clip, texts).mean().item(),
                  'CLIP-I': mean_pairwise_cosine(generated_clip, self.clip_t.images(real)),
                  'DINO': mean_pairwise_cosine(self.dino(generated), self.dino(real))}
        if self.toy is not None:
            scores.update(self.toy.score(subject, generated, texts, real))
        return dict(scores, images=len(paths))

    def evaluate(self, model_cfg, subjects: list, out_dir: str, weights: str | None = None, num_images: int = 4,
                 seed: int = 0, batch_size: int = 8, **sampling) -> dict:
        """Scores of one method (``model_cfg`` + ``weights``, where '{subject}' names each subject's
        file) per subject and overall; images under ``out_dir/<subject>``."""
        self.check(model_cfg, subjects, out_dir, weights, seed=seed, **sampling)
        # built once; each subject's weights replace every trainable tensor
        model = MODELS.build(model_cfg).to(self.device).eval()
        results = {}
        for subject in subjects:
            if weights:
                model.load_weights(subject_weights(weights, subject))
            paths = self.generate(model, subject, os.path.join(out_dir, subject), num_images, seed, batch_size,
                                  **sampling)
            results[subject] = self.score(subject, paths, num_images)
        del model
        overall = {k: sum(r[k] for r in results.values()) / len(results) for k in metric_names(results.values())}
        return dict(subjects=results, overall=overall)

    def check(self, model_cfg, subjects: list, out_dir: str, weights: str | None = None, num_images: int = 4,
              seed: int = 0, batch_size: int | None = None, **sampling) -> None:
        """Before any image: the subjects are DreamBench's, each one's weights exist, and images already in its
        folder were made by this config, these weights and this sampler (else their scores would be reported
        as this run's). More images per prompt may be added to a folder (image k is seeded alike), and the
        batch size changes no image."""
        unknown = [s for s in subjects if s not in self.protocol.classes]
        if unknown:
            raise InvalidValueError(f'--subjects {unknown} are not in {self.root}/prompts_and_classes.txt; '
                                    f'give subjects it lists: {sorted(self.protocol.classes)}')
        for subject in subjects:
            path = subject_weights(weights, subject) if weights else None
            claim_images(os.path.join(out_dir, subject), model_cfg, subject, weights_sha256(path) if path else None,
                         seed, sampling)


def claim_images(folder: str, model_cfg, subject: str, weights_hash: str | None, seed: int, sampling: dict,
                 fix: str = FIX, write: bool = True) -> None:
    """Images in ``folder`` are reused only if this config, these weights (``weights_hash``: their
    ``weights_sha256``) and this sampler made them (its manifest says so); else a :class:`ConflictError`
    naming what differs and ``fix``."""
    record = dict(what='DreamBench images', generation=GENERATION, subject=subject, model=plain(model_cfg),
                  seed=seed, sampling=plain(sampling), weights_sha256=weights_hash)
    claim(folder, record, 'DreamBench images', fix, write)


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


def metric_names(rows) -> list:
    """The metrics all score dicts have, in the order of METRICS (then any others, sorted); the order of
    the dicts' keys does not matter (records read back from JSON may have theirs sorted)."""
    rows = list(rows)
    common = [k for k in rows[0] if k != 'images' and all(k in r for r in rows)]
    return [k for k in METRICS if k in common] + sorted(k for k in common if k not in METRICS)


def scores_table(rows: dict, first: str = 'subject') -> str:
    """A markdown table of ``{row name: {metric: value}}``."""
    metrics = metric_names(rows.values())
    lines = [f'| {first} | ' + ' | '.join(metrics) + ' |', '|---' * (len(metrics) + 1) + '|']
    lines += [f'| {name} | ' + ' | '.join(f'{r[k]:.3f}' for k in metrics) + ' |' for name, r in rows.items()]
    return '\n'.join(lines)
