"""DreamBooth-LoRA in the kohya layout: diffusers' loader reproduces the diffusers file's images from it."""
import os

import numpy as np
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline
from mmengine import Config
from safetensors.torch import load_file

from mmagic_vico.convert.lora import convert_kohya_to_lora, convert_lora_to_kohya
from mmagic_vico.registry import MODELS

from ..conftest import REPO

LORA_TINY = os.path.join(REPO, 'configs', 'dreambooth', 'dreambooth_lora_tiny.py')
KWARGS = dict(height=64, width=64, num_inference_steps=3, guidance_scale=7.5)


def images(pipe, weights=None):
    pipe.unload_lora_weights()
    if weights:
        pipe.load_lora_weights(weights)
    return np.asarray(pipe('a photo of sks toy', generator=torch.Generator().manual_seed(1), **KWARGS).images[0],
                      dtype=int)


def test_the_kohya_file_samples_as_the_diffusers_file(tiny_cfg, tiny_path, tmp_path):
    torch.manual_seed(0)
    lora = MODELS.build(Config.fromfile(LORA_TINY).model)
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if 'lora_B' in name:
                p.add_(torch.randn_like(p) * 0.3)  # as if trained (peft starts B at zero)
    diffusers_file = lora.save_lora_weights(str(tmp_path))
    kohya_file = str(tmp_path / 'kohya_lora.safetensors')
    kohya = load_file(kohya_file)
    assert kohya and all(k.startswith('lora_unet_') and k.endswith(('.lora_down.weight', '.lora_up.weight', '.alpha'))
                         for k in kohya)
    assert 'lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn2_to_out_0.lora_up.weight' in kohya
    pipe = StableDiffusionPipeline.from_pretrained(
        tiny_path, scheduler=DDIMScheduler.from_pretrained(tiny_path, subfolder='scheduler'),
        safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    plain, theirs, from_kohya = images(pipe), images(pipe, diffusers_file), images(pipe, kohya_file)
    assert np.abs(from_kohya - theirs).max() <= 1
    assert np.abs(plain - theirs).max() > 1  # the adapters act


def test_kohya_alphas_fold_into_the_up_weights(tmp_path):
    g = torch.Generator().manual_seed(0)
    down = 'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora.down.weight'
    state = {down: torch.randn(4, 32, generator=g), down.replace('.down.', '.up.'): torch.randn(32, 4, generator=g)}
    kohya = convert_lora_to_kohya(state)
    assert kohya['lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha'].item() == 4  # rank
    back = convert_kohya_to_lora(kohya)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
    kohya['lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha'] = torch.tensor(2.0)
    halved = convert_kohya_to_lora(kohya)
    assert torch.allclose(halved[down.replace('.down.', '.up.')], state[down.replace('.down.', '.up.')] / 2)
