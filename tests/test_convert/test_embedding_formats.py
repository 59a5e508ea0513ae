"""The placeholder in A1111's / ComfyUI's layouts loads in diffusers and samples as our model does."""
import os

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline
from mmengine import Config
from safetensors.torch import load_file

from mmagic_vico.registry import MODELS
from tools.convert_weights import main as convert

from ..conftest import REPO

TI_TINY = os.path.join(REPO, 'configs', 'textual_inversion', 'textual_inversion_tiny.py')
KWARGS = dict(height=64, width=64, num_inference_steps=3, guidance_scale=7.5)


def pipeline(tiny_path):
    pipe = StableDiffusionPipeline.from_pretrained(
        tiny_path, scheduler=DDIMScheduler.from_pretrained(tiny_path, subfolder='scheduler'),
        safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize('target', ['a1111', 'a1111-pt'])
def test_a1111_embeddings_load_in_diffusers_and_sample_as_ours(tiny_cfg, tiny_path, tmp_path, target):
    torch.manual_seed(0)
    ti = MODELS.build(Config.fromfile(TI_TINY).model | dict(num_vectors=2))
    with torch.no_grad():
        emb = ti.text_encoder.get_input_embeddings().trainable_embeddings
        emb.add_(torch.randn_like(emb))  # as if trained
    weights = ti.save_weights(str(tmp_path / 'textual_inversion_weights.safetensors'))
    name = 'S.pt' if target == 'a1111-pt' else 'S.safetensors'
    out = convert(['embedding', target, weights, str(tmp_path / name)])
    if target == 'a1111':
        assert set(load_file(out)) == {'emb_params'} and load_file(out)['emb_params'].shape == emb.shape
    else:
        content = torch.load(out, weights_only=True)  # plain containers: no allow-list needed
        assert set(content) >= {'string_to_token', 'string_to_param', 'name'}
        assert torch.equal(content['string_to_param']['*'], emb.detach())
    ours = ti.infer(['a photo of S*'], seed=4, show_progress=False, **KWARGS)['samples']
    pipe = pipeline(tiny_path)
    pipe.load_textual_inversion(out, token='S*')
    theirs = pipe(['a photo of S* S*_1'], generator=torch.Generator().manual_seed(4), **KWARGS).images
    assert np.array_equal(np.asarray(ours[0]), np.asarray(theirs[0]))


def test_training_exports_write_the_a1111_embedding_beside_learned_embeds(tiny_cfg, tmp_path):
    vico = MODELS.build(tiny_cfg.model)
    vico.export_extras(str(tmp_path))
    a1111 = load_file(str(tmp_path / 'embedding_a1111.safetensors'))
    assert torch.equal(a1111['emb_params'], vico.text_encoder.get_input_embeddings().trainable_embeddings.detach())
