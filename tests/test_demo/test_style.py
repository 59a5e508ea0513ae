"""The demo learns a style the way the configs do: a learnable-property choice, style captions, ViCo's
object mask off, and weights of a style run that load with the mask off."""
import os

import pytest
import torch
from mmengine import Config

from ..conftest import REPO, TINY_CONFIG

STYLE_TINY = os.path.join(REPO, 'configs', 'vico', 'vico_style_tiny.py')
LINOCUT = os.path.join(REPO, 'data', 'vico', 'linocut')


@pytest.fixture
def session(tmp_path, tiny_path):
    from mmagic_vico.demo.session import DemoSession
    return DemoSession(TINY_CONFIG, work_root=str(tmp_path))


def run_cfg(session, tmp_path, **kw):
    return session.train_cfg(str(tmp_path / 'run'), 'S*', 'painting', 2, 1, 'a painting in the style of {}', **kw)


def test_style_choice_sets_style_captions_and_switches_the_object_mask_off(session, tmp_path):
    assert session.learnable_property == 'object'
    cfg = run_cfg(session, tmp_path, learnable_property='style')
    assert cfg.train_dataloader.dataset.learnable_property == 'style' and cfg.model.object_mask is False
    default = run_cfg(session, tmp_path)
    assert default.train_dataloader.dataset.learnable_property == 'object' and default.model.object_mask is True
    with pytest.raises(ValueError, match="learnable_property='painting' is neither 'object' nor 'style'"):
        run_cfg(session, tmp_path, learnable_property='painting')


def test_weights_of_a_style_run_load_with_the_mask_off(session, tmp_path):
    from mmagic_vico.registry import MODELS
    torch.manual_seed(0)
    weights = MODELS.build(Config.fromfile(STYLE_TINY).model).save_vico_weights(str(tmp_path / 'style.safetensors'))
    photos = sorted(os.path.join(LINOCUT, f) for f in os.listdir(LINOCUT))
    model = session.load(weights, photos)  # the demo runs the object config; the file says object_mask=False
    assert model.store.object_mask is False and model.initialize_token == 'painting'
    assert session.generate('a dog in the style of S*', steps=1, height=64, width=64, show_progress=False)
    assert all(mask.all() for mask in model.store.masks.values())


def test_page_offers_the_choice_and_a_style_config_starts_on_style(tmp_path, tiny_path):
    from mmagic_vico.demo.app import build_app
    from mmagic_vico.demo.session import DemoSession
    app = build_app(DemoSession(STYLE_TINY, work_root=str(tmp_path)), concept_roots=(os.path.dirname(LINOCUT),))
    by_id = {b.elem_id: b for b in app.blocks.values() if getattr(b, 'elem_id', None)}
    choice = by_id['learnable-property']
    assert choice.value == 'style' and [c[0] for c in choice.choices] == ['object', 'style']
    assert by_id['preview-prompt'].value == 'a painting in the style of {}'
