"""The toy DreamBench's subject and context figures (mmagic_vico/toyworld/fidelity.py), checked on renders
whose truth is known: the concept itself, lookalikes without its detail, and its own photos."""
import os

import numpy as np
import pytest
from PIL import Image

from mmagic_vico.toyworld import base_model as bm
from mmagic_vico.toyworld.concepts import CONCEPTS, NOVEL_COLOURS, concept_objects
from mmagic_vico.toyworld.fidelity import ToyFidelity, copies, prompt_background
from mmagic_vico.toyworld.render import Scene
from mmagic_vico.toyworld.scorer_sets import concept_set
from mmagic_vico.toyworld.world import BACKGROUND_NAMES, BACKGROUND_PHRASES
from mmagic_vico.utils.image import list_images

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOYBENCH = os.path.join(REPO, 'data', 'toybench')


@pytest.fixture(scope='module')
def fidelity():
    return ToyFidelity.from_benchmark(TOYBENCH)


def photos(subject):
    return [Image.open(p).convert('RGB') for p in list_images(os.path.join(TOYBENCH, subject))]


def test_prompts_name_their_background():
    for name, phrase in BACKGROUND_PHRASES.items():
        assert prompt_background(f'a sks robot {phrase}') == name
    assert prompt_background('a photo of sks robot') is None


def test_concept_scorer_gate_on_held_out_renders(fidelity):
    images, labels, heads = concept_set(1, seed=0, stream=3, processes=1)
    named = fidelity.subject.predict(images)['concept']
    acc = np.mean([heads['concept'].index(n) == y for n, y in zip(named, labels[:, 0])])
    assert acc >= 0.95, acc


@pytest.mark.parametrize('subject', list(CONCEPTS))
def test_new_renders_of_the_concept_score_as_subject_in_context(fidelity, subject):
    scenes = [Scene(b, subject, 'none', 7 * 10 ** 6 + i) for i, b in enumerate(BACKGROUND_NAMES)]
    images, _ = bm.render_many(scenes, processes=1, objects=concept_objects())
    prompts = [f'a sks {CONCEPTS[subject][0]} {BACKGROUND_PHRASES[b]}' for b in BACKGROUND_NAMES]
    scores = fidelity.score(subject, list(images), prompts, photos(subject))
    assert scores['subject'] >= 7 / 8 and scores['context'] >= 7 / 8 and scores['copy'] == 0, scores
    # the same pictures asked for other backgrounds lose context, not subject
    shifted = prompts[1:] + prompts[:1]
    assert fidelity.score(subject, list(images), shifted, photos(subject))['context'] <= 1 / 8


@pytest.mark.parametrize('subject', list(CONCEPTS))
def test_lookalikes_without_the_detail_are_not_the_subject(fidelity, subject):
    """The concept's class in the concept's own colours, but no pattern, emblem or odd part."""
    cls = CONCEPTS[subject][0]
    scenes = [Scene(b, cls, c, 8 * 10 ** 6 + i) for i, (b, c) in enumerate(zip(BACKGROUND_NAMES, 2 * list(NOVEL_COLOURS)))]
    images, _ = bm.render_many(scenes, processes=1, colours=NOVEL_COLOURS)
    prompts = [f'a sks {cls} {BACKGROUND_PHRASES[s.background]}' for s in scenes]
    concept = fidelity.score(subject, list(bm.render_many([Scene(s.background, subject, 'none', s.seed) for s in scenes],
                                                          processes=1, objects=concept_objects())[0]),
                             prompts, photos(subject))
    lookalike = fidelity.score(subject, list(images), prompts, photos(subject))
    assert lookalike['subject'] <= 1 / 8, lookalike
    assert lookalike['subject-cos'] < concept['subject-cos'], (lookalike, concept)


def test_a_photo_again_is_a_copy_and_a_new_pose_is_not():
    real = np.stack([np.asarray(p) for p in photos('star_robot')])
    noisy = np.clip(real + np.random.default_rng(0).normal(0, 8, real.shape), 0, 255).astype(np.uint8)
    assert copies(noisy, real).all() and copies(noisy[:, :, ::-1], real).all()  # mirrored too
    fresh, _ = bm.render_many([Scene(b, 'star_robot', 'none', 9 * 10 ** 6 + i) for i, b in enumerate(BACKGROUND_NAMES)],
                              processes=1, objects=concept_objects())
    assert not copies(fresh, real).any()


def test_a_benchmark_naming_missing_scorers_says_how_to_make_them(tmp_path):
    (tmp_path / 'scorers.json').write_text('{"world": "nowhere.safetensors", "subject": "../x.safetensors"}')
    with pytest.raises(FileNotFoundError, match='train_toy_scorer.py'):
        ToyFidelity.from_benchmark(str(tmp_path))
    assert ToyFidelity.from_benchmark(REPO) is None  # no scorers.json: plain DreamBench


def test_a_scorers_file_that_is_not_json_is_named_with_its_fix(tmp_path):
    from mmagic_vico.utils.errors import UserError
    (tmp_path / 'scorers.json').write_text('world: x')
    with pytest.raises(UserError, match='scorers.json is not a JSON object.*make_toy_concepts'):
        ToyFidelity.from_benchmark(str(tmp_path))
