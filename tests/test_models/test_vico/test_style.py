"""ViCo learning a style: the object mask is off, so the image attention reads every reference patch."""
import os

import pytest
import torch
from mmengine import Config

from mmagic_vico.registry import MODELS

from ...conftest import REPO

STYLE_TINY = os.path.join(REPO, 'configs', 'vico', 'vico_style_tiny.py')
FAST = dict(height=64, width=64, num_inference_steps=1, guidance_scale=3.0, show_progress=False)


@pytest.fixture
def style_cfg(tiny_path):
    return Config.fromfile(STYLE_TINY)


@torch.no_grad()
def test_style_model_attends_to_every_reference_patch_in_every_layer(style_cfg, reference_image):
    torch.manual_seed(0)
    vico = MODELS.build(style_cfg.model)
    assert vico.store.object_mask is False
    prompts = ['a painting in the style of S*', 'a dog in the style of S*']
    vico.infer(prompts, reference_image, **FAST)
    assert list(vico.store.masks) == vico.image_cross_layer_names
    assert all(mask.all() for mask in vico.store.masks.values())
    vico.store.object_mask = True  # the same model and reference with Otsu's mask: some patches are dropped
    vico.infer(prompts, reference_image, **FAST)
    assert not all(mask.all() for mask in vico.store.masks.values())


def test_style_weights_say_so_and_an_object_model_refuses_them(style_cfg, tiny_cfg, tmp_path):
    torch.manual_seed(0)
    path = MODELS.build(style_cfg.model).save_vico_weights(str(tmp_path / 'style.safetensors'))
    object_model = MODELS.build(tiny_cfg.model | dict(initialize_token='painting'))
    with pytest.raises(ValueError, match='object_mask=False.*--cfg-options model.object_mask'):
        object_model.load_vico_weights(path)
    MODELS.build(tiny_cfg.model | dict(object_mask=False)).load_vico_weights(path)


def test_object_mask_must_be_a_bool(tiny_cfg, tiny_path):
    with pytest.raises(ValueError, match="object_mask='no'"):
        MODELS.build(tiny_cfg.model | dict(object_mask='no'))
