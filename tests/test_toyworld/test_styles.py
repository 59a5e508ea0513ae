"""The procedural styles of the example style concept, and the shipped folder made from them."""
import os

import numpy as np
from PIL import Image

from mmagic_vico.toyworld.render import Scene, render_scene
from mmagic_vico.toyworld.styles import LINOCUT_PALETTE, band_edges, posterise, style_linocut

from ..conftest import REPO

INKS = {tuple(round(c * 255) for c in ink) for ink in LINOCUT_PALETTE}


def colours(img):
    return {tuple(int(v) for v in c) for c in np.unique(img.reshape(-1, 3), axis=0)}


def test_any_picture_prints_with_the_four_inks_only():
    scene, _ = render_scene(Scene('night', 'cup', 'green', 3), size=96)
    ramp = np.repeat(np.linspace(0, 255, 96, dtype=np.uint8)[None, :, None], 96, 0).repeat(3, 2)
    for img in (scene, ramp):
        out = style_linocut(img)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert colours(out) == INKS  # all four inks, nothing else
    noise = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    for img in (noise, np.full((32, 32, 3), 90, np.uint8)):
        assert colours(style_linocut(img)) <= INKS


def test_bands_split_at_the_pictures_own_quantiles_and_ties_share_a_band():
    lum = np.array([[0.1, 0.1, 0.2, 0.2], [0.3, 0.3, 0.9, 0.9]])
    assert posterise(lum, 4).tolist() == [[0, 0, 1, 1], [2, 2, 3, 3]]
    dim = lum * 0.2  # a darker picture of the same thing prints the same
    assert np.array_equal(posterise(dim, 4), posterise(lum, 4))


def test_outlines_follow_band_boundaries_with_the_given_thickness():
    bands = np.zeros((8, 10), int)
    bands[:, 5:] = 3
    assert np.flatnonzero(band_edges(bands, 1).any(0)).tolist() == [5]
    assert np.flatnonzero(band_edges(bands, 3).any(0)).tolist() == [3, 4, 5, 6, 7]
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, 32:] = 250
    out = style_linocut(img)
    ink = np.asarray([round(c * 255) for c in LINOCUT_PALETTE[0]])
    assert (out[:, 32] == ink).all() and not (out[:, 50] == ink).all(-1).any()


def test_shipped_style_folder_is_what_the_tool_renders(tmp_path):
    from tools.make_style_concept import main
    main([str(tmp_path), '--style', 'linocut'])
    shipped = os.path.join(REPO, 'data', 'vico', 'linocut')
    names = sorted(os.listdir(tmp_path))
    assert names == sorted(os.listdir(shipped)) and 4 <= len(names) <= 6
    for name in names:
        ours, theirs = (np.asarray(Image.open(os.path.join(d, name))) for d in (tmp_path, shipped))
        assert np.array_equal(ours, theirs), name
        assert colours(ours) <= INKS
