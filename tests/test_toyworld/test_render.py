"""The toy world: deterministic renders, every word drawable, held-out triples, captions."""
import numpy as np
import pytest

from mmagic_vico.toyworld.render import BACKGROUNDS, COLOURS, OBJECTS, Scene, render_scene
from mmagic_vico.toyworld.world import (BACKGROUND_PHRASES, all_triples, caption, evaluation_scenes, is_held_out,
                                        random_caption, training_scenes)


def test_same_seed_same_pixels_other_seed_other_pose():
    a, ma = render_scene(Scene('beach', 'robot', 'red', 7))
    b, mb = render_scene(Scene('beach', 'robot', 'red', 7))
    c, mc = render_scene(Scene('beach', 'robot', 'red', 8))
    assert a.dtype == np.uint8 and a.shape == (64, 64, 3) and mb.shape == (64, 64)
    assert np.array_equal(a, b) and np.array_equal(ma, mb)
    assert not np.array_equal(ma, mc)


@pytest.mark.parametrize('cls', list(OBJECTS))
def test_every_object_is_visible_and_in_its_colour(cls):
    """Each class covers a sizeable part of the picture and its pixels carry its colour's dominant channel."""
    for colour, rgb in COLOURS.items():
        img, mask = render_scene(Scene('snow', cls, colour, 3))
        assert 0.05 < mask.mean() < 0.5, (cls, colour, mask.mean())
        inside = img[mask > 0.99].astype(float) / 255
        target = np.asarray(rgb)
        # the most frequent pixel colour inside the object is the base colour shaded, not another hue
        dist = np.linalg.norm(inside / np.maximum(inside.max(1, keepdims=True), 1e-3)
                              - target / target.max(), axis=1)
        assert np.mean(dist < 0.25) > 0.3, (cls, colour)


@pytest.mark.parametrize('background', list(BACKGROUNDS))
def test_backgrounds_are_textured_and_distinct(background):
    img, mask = render_scene(Scene(background, 'ball', 'red', 11))
    bg = img[mask < 0.01].astype(float)
    assert bg.std(axis=0).mean() > 3  # a texture, not a flat colour
    others = [render_scene(Scene(b, 'ball', 'red', 11))[0] for b in BACKGROUNDS if b != background]
    assert all(np.abs(img.astype(float) - o).mean() > 10 for o in others)


def test_held_out_triples_leave_every_word_seen():
    held, seen = all_triples(True), all_triples(False)
    assert 0.05 < len(held) / (len(held) + len(seen)) < 0.15
    for position in range(3):
        assert {t[position] for t in seen} == {t[position] for t in held + seen}
    assert all(not is_held_out(s.cls, s.colour, s.background) for s in training_scenes(500))


def test_evaluation_seeds_never_meet_training_seeds():
    train = {s.seed for s in training_scenes(2000)}
    for stream in (1, 2, 3):
        assert not train & {s.seed for s in evaluation_scenes(None, 2, 0, stream=stream)}


def test_captions_name_the_scene():
    assert caption('cup', 'red', 'beach') == 'a photo of a red cup on the beach'
    assert caption('cup', None, None, 'a rendering of a {}') == 'a rendering of a cup'
    rng = np.random.default_rng(0)
    scene = Scene('water', 'dog', 'blue', 1)
    texts = [random_caption(rng, scene) for _ in range(400)]
    assert 0.05 < texts.count('') / 400 < 0.15
    full = [t for t in texts if t]
    assert all('dog' in t for t in full)
    assert 0.7 < np.mean([BACKGROUND_PHRASES['water'] in t for t in full]) < 0.95
    assert 0.7 < np.mean(['blue' in t for t in full]) < 0.95
