import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import CHECKPOINT_KEY_NAMES
from transformers import CLIPTextConfig, CLIPTextModel

from mmagic_vico.convert.compvis import (compvis_key_map, convert_compvis_to_diffusers,
                                         convert_diffusers_to_compvis)
from mmagic_vico.models.sd_loading import load_stable_diffusion
from mmagic_vico.models.tiny_sd import SD15_TEXT_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG


def diffusers_state(parts) -> dict:
    return {f'{name}.{k}': v for name in ('unet', 'vae', 'text_encoder') for k, v in parts[name].state_dict().items()}


def test_the_tiny_model_goes_to_the_compvis_layout_and_back_unchanged(tiny_path):
    state = diffusers_state(load_stable_diffusion(tiny_path))
    compvis = convert_diffusers_to_compvis(state)
    assert CHECKPOINT_KEY_NAMES['v1'] in compvis and CHECKPOINT_KEY_NAMES['clip'] in compvis  # diffusers' SD 1.x tests
    assert compvis['first_stage_model.decoder.mid.attn_1.q.weight'].ndim == 4  # LDM's 1x1 convolutions
    back = convert_compvis_to_diffusers(compvis)
    assert set(back) == set(state)
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_sd15_has_the_tensor_counts_of_its_released_checkpoint():
    """v1-5-pruned-emaonly holds 686 UNet, 248 VAE and 196 CLIP tensors (besides position_ids)."""
    with torch.device('meta'):
        parts = dict(unet=UNet2DConditionModel(**SD15_UNET_CONFIG), vae=AutoencoderKL(**SD15_VAE_CONFIG),
                     text_encoder=CLIPTextModel(CLIPTextConfig(**SD15_TEXT_CONFIG)))
    names = [name for name, _ in compvis_key_map(diffusers_state(parts)).values()]
    counts = {prefix: sum(n.startswith(prefix) for n in names)
              for prefix in ('model.diffusion_model.', 'first_stage_model.', 'cond_stage_model.transformer.')}
    assert counts == {'model.diffusion_model.': 686, 'first_stage_model.': 248, 'cond_stage_model.transformer.': 196}
    assert len(set(names)) == len(names)


def test_weights_that_are_not_sd1x_are_named(tiny_path):
    state = diffusers_state(load_stable_diffusion(tiny_path)) | {'unet.extra.weight': torch.zeros(1)}
    with pytest.raises(ValueError, match='unet.extra.weight'):
        convert_diffusers_to_compvis(state)
