import os

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel

from mmagic_vico.convert.compvis import convert_diffusers_to_compvis
from mmagic_vico.models.sd_loading import load_stable_diffusion
from mmagic_vico.models.sd_single_file import save_single_file_sd
from mmagic_vico.models.tiny_sd import SD15_TEXT_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG
from mmagic_vico.registry import MODELS

SAMPLING = dict(height=64, width=64, num_inference_steps=3, guidance_scale=7.5, show_progress=False)


@pytest.fixture(scope='module')
def tiny_file(tiny_path, tmp_path_factory):
    """The tiny model written as one CompVis-layout file."""
    parts = load_stable_diffusion(tiny_path)
    return save_single_file_sd(str(tmp_path_factory.mktemp('single') / 'tiny.safetensors'), parts['unet'],
                               parts['vae'], parts['text_encoder'], parts['scheduler_config'])


def test_vico_on_the_tiny_model_as_one_compvis_file_samples_as_on_its_folder(tiny_cfg, tiny_file, reference_image,
                                                                              monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    path = tiny_file
    folder_model = MODELS.build(tiny_cfg.model)
    file_model = MODELS.build(tiny_cfg.model | dict(pretrained_model=path))
    with torch.no_grad():
        for p in folder_model.trainable_state_dict().values():
            p.add_(torch.randn_like(p) * 0.1)  # as if trained
    file_model.load_state_dict(folder_model.trainable_state_dict(), strict=False)
    ours, theirs = (dict(m.named_parameters()) | dict(m.named_buffers()) for m in (folder_model, file_model))
    assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)  # every weight, bit for bit
    args = (['a photo of S*', 'S* on the beach'], reference_image)
    ours = folder_model.infer(*args, seed=3, **SAMPLING)['samples']
    theirs = file_model.infer(*args, seed=3, **SAMPLING)['samples']
    # within 1/255: CPU kernels round differently for differently aligned weight buffers (~1e-6 per UNet call)
    assert max(np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max() for a, b in zip(ours, theirs)) <= 1


def test_the_written_file_is_what_diffusers_single_file_loader_reads(tiny_path, tiny_file):
    pipe = StableDiffusionPipeline.from_single_file(tiny_file, config=tiny_path, local_files_only=True)
    parts = load_stable_diffusion(tiny_path)
    for name in ('unet', 'vae', 'text_encoder'):
        ours, theirs = parts[name].state_dict(), getattr(pipe, name).state_dict()
        assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours), name


def test_a_lightning_ckpt_of_sd1x_hyperparameters_loads_without_configs(tmp_path):
    """A .ckpt carries no config: widths come from the shapes, heads and norm groups are SD 1.x's."""
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**SD15_UNET_CONFIG | dict(block_out_channels=(32, 32, 64, 64), cross_attention_dim=48))
    vae = AutoencoderKL(**SD15_VAE_CONFIG | dict(block_out_channels=(32, 32, 64, 64), layers_per_block=1))
    text = CLIPTextModel(CLIPTextConfig(**SD15_TEXT_CONFIG | dict(hidden_size=48, intermediate_size=96,
                                                                   num_hidden_layers=2)))
    state = {f'{n}.{k}': v for n, m in (('unet', unet), ('vae', vae), ('text_encoder', text))
             for k, v in m.state_dict().items()}
    path = str(tmp_path / 'model.ckpt')
    torch.save({'state_dict': convert_diffusers_to_compvis(state), 'global_step': 470000}, path)
    parts = load_stable_diffusion(path)
    for name, model in (('unet', unet), ('vae', vae), ('text_encoder', text)):
        loaded = parts[name].state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items()), name
    assert list(parts['unet'].config.block_out_channels) == [32, 32, 64, 64]
    assert parts['vae'].config.layers_per_block == 1 and parts['vae'].config.norm_num_groups == 32
    ids = parts['tokenizer'](['a photo of a dog'], return_tensors='pt').input_ids
    with torch.no_grad():
        assert torch.equal(parts['text_encoder'](ids)[0], text(ids)[0])  # 12 heads, as SD 1.x


class WritesAFile:
    """What a hostile pickle does: calls something when unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_a_ckpt_whose_pickle_calls_code_is_refused_unopened(tiny_file, tmp_path):
    path, marker = str(tmp_path / 'model.ckpt'), str(tmp_path / 'was_run')
    torch.save({'state_dict': load_file(tiny_file), 'callbacks': WritesAFile(marker)}, path)
    with pytest.raises(ValueError, match='could run any code') as info:
        load_stable_diffusion(path)
    assert 'posix.mkdir' in str(info.value) and path in str(info.value)
    assert not os.path.exists(marker)


def test_a_file_that_is_not_a_checkpoint_says_what_it_lacks(tiny_cfg, tiny_path, tmp_path):
    weights = MODELS.build(tiny_cfg.model).save_vico_weights(str(tmp_path / 'vico_weights.safetensors'))
    with pytest.raises(ValueError, match='not a Stable Diffusion 1.x single-file checkpoint'):
        load_stable_diffusion(weights)
    with pytest.raises(FileNotFoundError, match='missing.ckpt'):
        load_stable_diffusion(str(tmp_path / 'missing.ckpt'))


def test_a_file_of_other_widths_without_configs_is_refused_with_the_fix(tiny_file, tmp_path):
    """The tiny model's heads and norm groups are not SD 1.x's: without the configs it carries, they are unknown."""
    path = str(tmp_path / 'bare.safetensors')
    save_file(load_file(tiny_file), path)  # the same tensors, no metadata
    with pytest.raises(ValueError, match='text width 32 over 12 heads.*carries no config'):
        load_stable_diffusion(path)
