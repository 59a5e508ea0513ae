"""The labelled renders the toy-world scorers learn from and are gated on (tools/train_toy_scorer.py).

``stream`` picks the seed stream (world.py): 2 for training, 3 for the gate, so a gate measures
renders the scorer never saw.
"""
import numpy as np

from .base_model import render_many, scene_labels
from .concepts import CONCEPTS, NOVEL_COLOURS, concept_objects
from .render import Scene
from .scorer import BASE_HEADS
from .world import BACKGROUND_NAMES, evaluation_scenes


def base_set(per_triple: int, seed: int, stream: int, processes: int = 2):
    """Every (class, colour, background) ``per_triple`` times, labelled by all three."""
    scenes = evaluation_scenes(None, per_triple, seed, stream=stream)
    images, _ = render_many(scenes, processes)
    return images, scene_labels(scenes), BASE_HEADS


def concept_set(per_triple: int, seed: int, stream: int, processes: int = 2):
    """Each concept on every background (per_triple * 6 renders per background), labelled by name; labelled
    'other': as many renders of the world's own objects, plus lookalikes: every class in each of the
    concepts' own colours with no pattern, emblem or odd part, so that identity means the concept's detail
    and not only its palette."""
    names = list(CONCEPTS) + ['other']
    rng = np.random.default_rng([seed, stream, 7])
    lo = stream * 2 ** 31
    scenes = [Scene(b, c, 'none', int(rng.integers(lo, lo + 2 ** 31)))
              for c in CONCEPTS for b in BACKGROUND_NAMES for _ in range(6 * per_triple)]
    concept_images, _ = render_many(scenes, processes, objects=concept_objects())
    others = evaluation_scenes(None, per_triple, seed + 1, stream=stream)
    other_images, _ = render_many(others, processes)
    lookalikes = [Scene(b, c, colour, int(rng.integers(lo, lo + 2 ** 31)))
                  for c in sorted(set(cls for cls, _ in CONCEPTS.values())) for colour in NOVEL_COLOURS
                  for b in BACKGROUND_NAMES for _ in range(per_triple)]
    lookalike_images, _ = render_many(lookalikes, processes, colours=NOVEL_COLOURS)
    images = np.concatenate([concept_images, other_images, lookalike_images])
    labels = np.array([names.index(s.cls) for s in scenes]
                      + [names.index('other')] * (len(others) + len(lookalikes)))[:, None]
    return images, labels, {'concept': names}
