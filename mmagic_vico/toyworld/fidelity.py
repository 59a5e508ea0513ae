"""Subject and context fidelity on the toy DreamBench (``data/toybench``), measured from pixels.

Beside CLIP-T / CLIP-I / DINO, which the tiny offline backbones cannot make meaningful, a toy
benchmark names its own scorers in ``scorers.json`` (paths relative to the folder):

- ``context``: the world scorer's background of each image equals the background its prompt asks for
  ("... on the beach" -> beach): the share of images where it does.
- ``subject``: the concept scorer (trained on many renders of every concept and of lookalikes: the
  world's objects, also in the concepts' own colours) names the image's subject: the share where it does.
- ``subject-cos``: mean cosine between the concept scorer's pooled features of generated images and of
  the subject's photos, a DINO-like analogue that gives partial credit.
- ``copy``: the share of images that are near-duplicates of one of the subject's photos (or its mirror
  image): pixel RMSE under :data:`COPY_RMSE`. Calibration (the shipped VAE, data/toybench): a photo's own
  VAE reconstruction is at most 0.079 from it; a fresh render of the same concept on the same
  background is at least 0.143 from every photo.
"""
import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..utils.errors import InvalidValueError, MissingFileError
from .scorer import ToyScorer, images_to_tensor
from .world import BACKGROUND_PHRASES

TOY_METRICS = ('context', 'subject', 'subject-cos', 'copy')
COPY_RMSE = 0.11
SCORERS_FILE = 'scorers.json'


def prompt_background(prompt: str) -> Optional[str]:
    """The background a prompt asks for (its longest background phrase), or None."""
    found = [(len(phrase), name) for name, phrase in BACKGROUND_PHRASES.items() if phrase in prompt]
    return max(found)[1] if found else None


def _pixels(images) -> np.ndarray:
    """(N, 64, 64, 3) float in [0, 1] of PIL images or uint8 arrays."""
    return (images_to_tensor(images).permute(0, 2, 3, 1).numpy() + 1) / 2


def copies(generated, photos) -> np.ndarray:
    """Per generated image: is it within COPY_RMSE of a photo or of a photo's mirror image?"""
    gen, real = _pixels(generated), _pixels(photos)
    real = np.concatenate([real, real[:, :, ::-1]])
    rmse = np.sqrt(((gen[:, None] - real[None]) ** 2).mean(axis=(2, 3, 4)))
    return rmse.min(axis=1) < COPY_RMSE


class ToyFidelity:
    """The toy benchmark's pixel scorers: ``world`` (background, class, colour heads) and ``subject``
    (a 'concept' head over the benchmark's subjects and 'other')."""

    def __init__(self, world: ToyScorer, subject: ToyScorer):
        if 'background' not in world.heads or 'concept' not in subject.heads:
            raise InvalidValueError('toy scorers: the world scorer needs a background head and the subject scorer a '
                                    'concept head (tools/train_toy_scorer.py [--kind concepts] makes them)')
        self.world, self.subject = world, subject

    @classmethod
    def from_benchmark(cls, root: str) -> Optional['ToyFidelity']:
        """The scorers ``root/scorers.json`` names, or None when the benchmark names none."""
        path = os.path.join(root, SCORERS_FILE)
        if not os.path.isfile(path):
            return None
        try:
            with open(path, encoding='utf-8') as f:
                names = dict(json.load(f))
        except (ValueError, TypeError) as err:
            raise InvalidValueError(f'{path} is not a JSON object naming the scorers ({err}); write it as '
                                    '{"world": "../toyworld_scorer.safetensors", "subject": '
                                    '"../toybench_scorer.safetensors"} (paths relative to the benchmark folder), or '
                                    'run python tools/make_toy_concepts.py') from None
        files = {k: os.path.normpath(os.path.join(root, names.get(k, ''))) for k in ('world', 'subject')}
        missing = [f'{k}: {v}' for k, v in files.items() if not os.path.isfile(v)]
        if missing:
            raise MissingFileError(f'{path} names scorers that do not exist ({"; ".join(missing)}); train them with '
                                   'python tools/train_toy_scorer.py [--kind concepts]')
        return cls(ToyScorer.from_file(files['world']), ToyScorer.from_file(files['subject']))

    def score(self, subject: str, generated: Sequence, prompts: Sequence[str], photos: Sequence) -> Dict[str, float]:
        """The four figures of ``generated`` (one prompt each) for ``subject`` with its ``photos``."""
        if subject not in self.subject.heads['concept']:
            raise InvalidValueError(f'subject {subject!r} is not one the subject scorer knows '
                                    f'({self.subject.heads["concept"]}): add its drawing to mmagic_vico/toyworld/'
                                    'concepts.py and retrain it with python tools/train_toy_scorer.py --kind concepts')
        wanted: List[Optional[str]] = [prompt_background(p) for p in prompts]
        seen = self.world.predict(generated)['background']
        asked = [(s, w) for s, w in zip(seen, wanted) if w is not None]
        named, features = self.subject.read(generated)
        cos = features @ self.subject.features_of(photos).T
        return {'context': float(np.mean([s == w for s, w in asked])) if asked else float('nan'),
                'subject': float(np.mean([n == subject for n in named['concept']])),
                'subject-cos': cos.mean().item(),
                'copy': float(copies(generated, photos).mean())}
