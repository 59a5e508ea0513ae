"""The demo's work without the page: train with reports and previews, stop, load, generate."""
import json
import os
import warnings

import pytest
import torch
from safetensors import safe_open

from ..conftest import DREAMBENCH, NO_DREAMBENCH, TINY_CONFIG

FAST = {'default_hooks.sample_grid.num_inference_steps': 2, 'default_hooks.sample_grid.height': 64,
        'default_hooks.sample_grid.width': 64}


def photos(n=4):
    folder = os.path.join(DREAMBENCH, 'dog7')
    if not os.path.isdir(folder):
        pytest.skip(NO_DREAMBENCH)
    return sorted(os.path.join(folder, f) for f in os.listdir(folder))[:n]


@pytest.fixture
def session(tmp_path, tiny_path):
    from mmagic_vico.demo.session import DemoSession
    return DemoSession(TINY_CONFIG, FAST, work_root=str(tmp_path))


def test_train_reports_every_step_and_previews_then_generates(session):
    reports = list(session.train(photos(), 'S*', 'dog', steps=4, preview_every=2))
    steps = [r.step for r in reports if r.loss is not None and not r.weights]
    assert steps == [1, 2, 3, 4] and all(torch.isfinite(torch.tensor(r.loss)) for r in reports if r.loss is not None)
    previews = [r.preview for r in reports if r.preview]
    assert [os.path.basename(p) for p in previews] == ['iter_2.png', 'iter_4.png']  # each grid once
    last = reports[-1]
    assert last.weights and os.path.exists(last.weights) and not last.stopped
    # the run's photos are copies in upload order; the reference for sampling is the first
    assert [os.path.basename(p) for p in session.photos] == [f'{i:02d}_{os.path.basename(p)}'
                                                              for i, p in enumerate(photos())]
    with safe_open(last.weights, 'pt') as f:
        meta = f.metadata()
        moved = f.get_tensor(next(k for k in f.keys() if 'trainable_embeddings' in k))
    assert json.loads(meta['placeholder']) == 'S*' and json.loads(meta['initialize_token']) == 'dog'
    tokenizer = session.model.tokenizer
    dog = session.model.text_encoder.get_input_embeddings().base_layer.weight[tokenizer.convert_tokens_to_ids('dog</w>')]
    assert not torch.equal(moved[0], dog.detach())  # trained away from its initialisation
    images = session.generate(['a photo of S*', 'a S* on the beach'], num_images=2, steps=2, height=64, width=64,
                              show_progress=False)
    assert len(images) == 4 and images[0].size == (64, 64)


def test_stop_ends_training_early_and_still_exports(session):
    reports = session.train(photos(), 'S*', 'dog', steps=50, preview_every=100)
    first = next(reports)
    with pytest.raises(RuntimeError, match='busy with a training'):  # one job at a time
        session.generate('a photo of S*')
    session.stop()
    rest = list(reports)
    last = rest[-1]
    assert first.step == 1 and last.stopped and last.step < 50 and os.path.exists(last.weights)


def test_load_builds_the_model_the_weights_were_made_for(session, tmp_path, tiny_path):
    from mmagic_vico.demo.session import DemoSession
    trained = list(session.train(photos(), '<my-dog>', 'dog', steps=1, preview_every=5))[-1].weights
    other = DemoSession(TINY_CONFIG, FAST, work_root=str(tmp_path / 'other'))  # its config says S* / toy
    model = other.load(trained, photos())
    assert model.placeholder == '<my-dog>' and model.initialize_token == 'dog'
    ours, theirs = session.model.trainable_state_dict(), model.trainable_state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    same_seed = [other.generate('a photo of <my-dog>', steps=2, height=64, width=64, show_progress=False)[0],
                 session.generate('a photo of <my-dog>', steps=2, height=64, width=64, show_progress=False)[0]]
    assert same_seed[0].tobytes() == same_seed[1].tobytes()


def test_user_mistakes_are_named(session, tmp_path):
    with pytest.raises(ValueError, match='No concept photos'):
        next(session.train([], 'S*', 'dog', steps=2, preview_every=1))
    text = tmp_path / 'notes.txt'
    text.write_text('not a photo')
    with pytest.raises(ValueError, match=r"\['notes.txt'\] are not images"):
        next(session.train(photos() + [str(text)], 'S*', 'dog', steps=2, preview_every=1))
    with pytest.raises(ValueError, match='steps=0'):
        next(session.train(photos(), 'S*', 'dog', steps=0, preview_every=1))
    with pytest.raises(ValueError, match='has no "{}"'):
        next(session.train(photos(), 'S*', 'dog', steps=2, preview_every=1, preview_prompt='a dog'))
    with pytest.raises(RuntimeError, match='train one, or load trained weights'):
        session.generate('a photo of S*')
    with pytest.warns(UserWarning, match='2 concept photos'), pytest.raises(ValueError, match='initialize_token'):
        next(session.train(photos(2), 'S*', 'a dog', steps=2, preview_every=1))  # two tokens: error from the model
    assert not list(tmp_path.glob('run_*'))  # none of these runs started: no folder left behind


def test_prompt_without_placeholder_warns(session):
    list(session.train(photos(), 'S*', 'dog', steps=1, preview_every=5))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        session.generate(['a photo of S*', 'a photo of a dog'], steps=1, height=64, width=64, show_progress=False)
        session.generate(['a photo of a dog'], steps=1, height=64, width=64, show_progress=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert [m for m in messages if 'do not contain' in m] == [
        "['a photo of a dog'] do not contain the placeholder 'S*': they will not show the learned concept."]
    assert len([m for m in messages if m.startswith("No prompt contains the placeholder 'S*'")]) == 1  # the model's


def test_example_concepts_lists_folders_with_images(tmp_path):
    from mmagic_vico.demo.app import example_concepts
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'notes').mkdir()
    (tmp_path / 'notes' / 'a.txt').write_text('x')
    concepts = example_concepts([str(tmp_path), DREAMBENCH, 'data/vico'])
    assert 'empty' not in concepts and 'notes' not in concepts
    if os.path.isdir(DREAMBENCH):
        assert len(concepts['dog7']) == len([f for f in os.listdir(os.path.join(DREAMBENCH, 'dog7'))])


def test_weights_of_another_method_are_refused(session, tmp_path):
    from mmengine import Config

    from mmagic_vico.registry import MODELS
    config = os.path.join(os.path.dirname(os.path.dirname(TINY_CONFIG)), 'textual_inversion',
                          'textual_inversion_tiny.py')
    weights = MODELS.build(Config.fromfile(config).model).save_weights(str(tmp_path / 'ti.safetensors'))
    with pytest.raises(ValueError, match=r'holds TextualInversion weights but the demo runs ViCo .*--config'):
        session.load(weights)
    assert session.model is None
