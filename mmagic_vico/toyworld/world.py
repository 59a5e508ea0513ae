"""The toy world's vocabulary, its held-out combinations and its captions.

A scene is (background, class, colour, seed). Class names are single CLIP tokens, so each can be a
method's ``initialize_token``; background phrases follow DreamBench's re-contextualisation prompts.
Some (class, colour, background) triples never appear in training: the base model's composition is
measured on them.
"""
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from .render import BACKGROUNDS, COLOURS, OBJECTS, Scene

#: background name -> the phrase captions use for it
BACKGROUND_PHRASES: Dict[str, str] = {
    'beach': 'on the beach',
    'snow': 'in the snow',
    'grass': 'on the grass',
    'night': 'at night',
    'room': 'in a room',
    'table': 'on a table',
    'water': 'in the water',
    'street': 'on a cobblestone street',
}
CLASS_NAMES: List[str] = list(OBJECTS)
COLOUR_NAMES: List[str] = list(COLOURS)
BACKGROUND_NAMES: List[str] = list(BACKGROUNDS)
assert list(BACKGROUND_PHRASES) == BACKGROUND_NAMES

#: ImageNet-style prefixes (Textual Inversion's small list, the one the concept configs train with),
#: so that the base already reads the captions personalization will use.
PREFIX_TEMPLATES: List[str] = [
    'a photo of a {}', 'a rendering of a {}', 'a cropped photo of the {}', 'the photo of a {}',
    'a photo of a clean {}', 'a photo of a dirty {}', 'a dark photo of the {}', 'a photo of my {}',
    'a photo of the cool {}', 'a close-up photo of a {}', 'a bright photo of the {}', 'a cropped photo of a {}',
    'a photo of the {}', 'a good photo of the {}', 'a photo of one {}', 'a close-up photo of the {}',
    'a rendition of the {}', 'a photo of the clean {}', 'a rendition of a {}', 'a photo of a nice {}',
    'a good photo of a {}', 'a photo of the nice {}', 'a photo of the small {}', 'a photo of the weird {}',
    'a photo of the large {}', 'a photo of a cool {}', 'a photo of a small {}', 'a {}']


def is_held_out(cls: str, colour: str, background: str) -> bool:
    """About one triple in eleven, spread so every class, colour and background keeps most of its pairs."""
    k, c, b = CLASS_NAMES.index(cls), COLOUR_NAMES.index(colour), BACKGROUND_NAMES.index(background)
    return (k + 2 * c + 3 * b) % 11 == 0


def all_triples(held_out: Optional[bool] = None) -> List[Tuple[str, str, str]]:
    """(class, colour, background) triples, all or only the held-out (True) / seen (False) ones."""
    out = [(k, c, b) for k in CLASS_NAMES for c in COLOUR_NAMES for b in BACKGROUND_NAMES]
    return out if held_out is None else [t for t in out if is_held_out(*t) == held_out]


def caption(cls: str, colour: Optional[str], background: Optional[str], prefix: str = 'a photo of a {}') -> str:
    """'a photo of a red cup on the beach'; colour or background None leaves that part out."""
    noun = f'{colour} {cls}' if colour else cls
    text = prefix.format(noun)
    return f'{text} {BACKGROUND_PHRASES[background]}' if background else text


def random_caption(rng: np.random.Generator, scene: Scene, p_empty: float = 0.1, p_drop: float = 0.15) -> str:
    """A training caption: empty with p_empty (classifier-free guidance), else a random prefix with the
    colour and the background each left out with p_drop (so partial prompts stay meaningful)."""
    if rng.random() < p_empty:
        return ''
    prefix = PREFIX_TEMPLATES[rng.integers(len(PREFIX_TEMPLATES))] if rng.random() < 0.5 else 'a photo of a {}'
    colour = None if rng.random() < p_drop else scene.colour
    background = None if rng.random() < p_drop else scene.background
    return caption(scene.cls, colour, background, prefix)


def training_scenes(n: int, seed: int = 0) -> Iterator[Scene]:
    """n scenes of the seen triples, uniformly over triples, each with its own render seed."""
    rng = np.random.default_rng(seed)
    triples = all_triples(held_out=False)
    for i in range(n):
        k, c, b = triples[rng.integers(len(triples))]
        yield Scene(b, k, c, int(rng.integers(2 ** 31)))


def evaluation_scenes(held_out: Optional[bool], per_triple: int, seed: int, stream: int = 1) -> List[Scene]:
    """``per_triple`` scenes of every held-out (True), seen (False) or any (None) triple. Render seeds come
    from [stream * 2**31, (stream + 1) * 2**31): stream 0 is the base model's training data, 1 evaluation,
    2 and 3 the scorer's training and gate sets, so no two uses share a picture."""
    rng = np.random.default_rng([seed, stream])
    lo = stream * 2 ** 31
    return [Scene(b, k, c, int(rng.integers(lo, lo + 2 ** 31)))
            for k, c, b in all_triples(held_out=held_out) for _ in range(per_triple)]
