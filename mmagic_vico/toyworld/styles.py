"""Deterministic picture styles over rendered scenes: one distinctive look for style-capture examples.

Small pure functions on float images in [0, 1] (k-diffusion style: one helper per step, one shared
signature for a whole style, ``style(img (H, W, 3) uint8) -> (H, W, 3) uint8``). No randomness and no BLAS:
the same input gives the same pixels, so the example folder can be re-made exactly.
"""
from typing import Callable, Dict, Sequence, Tuple

import numpy as np

#: The linocut's inks, darkest first (sRGB, 0..1): indigo ink, teal, ochre, cream paper.
LINOCUT_PALETTE: Tuple[Tuple[float, float, float], ...] = (
    (0.13, 0.11, 0.27), (0.10, 0.46, 0.50), (0.89, 0.63, 0.27), (0.97, 0.93, 0.82))


def luminance(img: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of an (H, W, 3) image in [0, 1] -> (H, W)."""
    return 0.2126 * img[..., 0] + 0.7152 * img[..., 1] + 0.0722 * img[..., 2]  # no BLAS: same bits everywhere


def posterise(lum: np.ndarray, levels: int) -> np.ndarray:
    """Luma -> integer bands 0 (darkest) .. levels - 1 split at the picture's own quantiles, so that every
    picture, dark or bright, prints with all its inks (equal pixel values always share a band)."""
    cuts = np.quantile(lum, np.arange(1, levels) / levels)
    return np.searchsorted(cuts, lum, side='right')


def hatch_lines(shape: Tuple[int, int], spacing: int, width: int, direction: int = 1) -> np.ndarray:
    """Diagonal parallel lines, ``width`` px thick every ``spacing`` px; direction 1: '/', -1: '\\'."""
    y, x = np.indices(shape)
    return (x + direction * y) % spacing < width


def band_edges(bands: np.ndarray, thickness: int) -> np.ndarray:
    """Pixels on a boundary between two bands, grown to ``thickness`` px (carved outlines)."""
    edge = np.zeros(bands.shape, bool)
    edge[1:] |= bands[1:] != bands[:-1]
    edge[:, 1:] |= bands[:, 1:] != bands[:, :-1]
    for _ in range(thickness - 1):
        grown = edge.copy()
        grown[1:] |= edge[:-1]
        grown[:-1] |= edge[1:]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return edge


def box_blur(lum: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window (edge pixels repeated): removes speckle before banding."""
    padded = np.pad(lum, radius, mode='edge')
    k = 2 * radius + 1
    acc = np.zeros_like(lum)
    for dy in range(k):
        for dx in range(k):
            acc += padded[dy:dy + lum.shape[0], dx:dx + lum.shape[1]]
    return acc / (k * k)


def style_linocut(img: np.ndarray, palette: Sequence[Tuple[float, float, float]] = LINOCUT_PALETTE) -> np.ndarray:
    """A linocut print: four inks by brightness, carved '\\' paper lines in the solid-ink shadows, '/' ink
    hatching in the mid-dark band, thick ink outlines where bands meet. (H, W, 3) uint8 -> uint8."""
    size = min(img.shape[:2])
    lum = box_blur(luminance(img.astype(np.float32) / 255.0), max(1, size // 128))
    bands = posterise(lum, len(palette))
    inks = np.asarray(palette, np.float32)
    out = inks[bands]
    spacing, width = max(4, size // 40), max(1, size // 128)
    out[(bands == 1) & hatch_lines(bands.shape, spacing, width, 1)] = inks[0]
    out[(bands == 0) & hatch_lines(bands.shape, spacing, width, -1)] = inks[-1]
    out[band_edges(bands, max(2, size // 96))] = inks[0]
    return (out * 255 + 0.5).astype(np.uint8)


#: name -> style function; the name is the example folder's suffix (data/vico/<name>).
STYLES: Dict[str, Callable[[np.ndarray], np.ndarray]] = dict(linocut=style_linocut)
