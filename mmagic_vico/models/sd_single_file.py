"""Stable Diffusion 1.x from and to one CompVis-layout file, offline.

Loading converts the file with diffusers' own converters and builds the models from configs read off
the tensors (:mod:`mmagic_vico.convert.compvis_config`; SD 1.5's defaults where shapes are silent, or
the configs the file carries), so nothing is looked up on the hub. The tokenizer is CLIP's, written
from its BPE vocabulary. Writing is the inverse, with the configs in the file's metadata, so that the
tiny model, whose heads and norm groups are not SD 1.5's, comes back exactly.
"""
import shutil
import tempfile

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from mmagic_vico.convert.checkpoint_file import read_sd_checkpoint
from mmagic_vico.convert.compvis import convert_compvis_to_diffusers, convert_diffusers_to_compvis
from mmagic_vico.convert.compvis_config import configs_metadata, diffusers_configs
from mmagic_vico.utils.errors import InvalidValueError
from .tiny_sd import (SD15_SCHEDULER_CONFIG, SD15_TEXT_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG,
                      write_clip_tokenizer_files)
from .weights import atomic_save_safetensors

SD15_CONFIGS = dict(unet=SD15_UNET_CONFIG, vae=SD15_VAE_CONFIG, text_encoder=SD15_TEXT_CONFIG,
                    scheduler=SD15_SCHEDULER_CONFIG)


def clip_tokenizer() -> CLIPTokenizer:
    """CLIP's tokenizer (SD 1.x's), from the BPE vocabulary of the installed open_clip_torch."""
    folder = tempfile.mkdtemp(prefix='clip_tokenizer-')
    try:
        write_clip_tokenizer_files(folder)
        return CLIPTokenizer.from_pretrained(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _part(state: dict, name: str) -> dict:
    """One model's tensors in fp32, taken out of ``state`` (a half-precision file is not held twice)."""
    prefix = f'{name}.'
    return {k[len(prefix):]: v.float() if v.is_floating_point() else v
            for k, v in ((k, state.pop(k)) for k in [k for k in state if k.startswith(prefix)])}


def _load(model, state: dict, source: str, name: str, assign: bool):
    try:
        model.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as err:
        raise InvalidValueError(f'pretrained_model={source!r}: its {name} weights do not fit an SD 1.x {name} '
                                f'({str(err).splitlines()[0][:300]}). Is it a complete SD 1.x checkpoint?') from err
    left = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if left:
        raise InvalidValueError(f'pretrained_model={source!r}: its {name} lacks {left[:3]}; give a complete SD 1.x '
                                'checkpoint.')
    return model


def load_single_file_sd(path: str) -> dict:
    """Tokenizer, text encoder, VAE, UNet and scheduler config of a CompVis-layout SD 1.x file."""
    compvis, metadata = read_sd_checkpoint(path)
    state = convert_compvis_to_diffusers(compvis)
    del compvis
    configs = diffusers_configs(state, SD15_CONFIGS, metadata, f'pretrained_model={path!r}')
    with torch.device('meta'):  # the weights come from the file: no random initialisation of 1 B parameters
        unet = UNet2DConditionModel.from_config(configs['unet'])
        vae = AutoencoderKL.from_config(configs['vae'])
    text_encoder = CLIPTextModel(CLIPTextConfig(**configs['text_encoder']))  # non-persistent buffers: built for real
    return dict(tokenizer=clip_tokenizer(),
                text_encoder=_load(text_encoder, _part(state, 'text_encoder'), path, 'text_encoder', assign=False),
                vae=_load(vae, _part(state, 'vae'), path, 'vae', assign=True),
                unet=_load(unet, _part(state, 'unet'), path, 'unet', assign=True),
                scheduler_config=configs['scheduler'])


def save_single_file_sd(path: str, unet, vae, text_encoder, scheduler_config: dict) -> str:
    """Write the three models as one CompVis-layout SD 1.x safetensors file (A1111, ComfyUI, diffusers'
    ``from_single_file``), their diffusers configs in its metadata."""
    state = {f'{name}.{k}': v for name, model in (('unet', unet), ('vae', vae), ('text_encoder', text_encoder))
             for k, v in model.state_dict().items()}
    text_config = {k: v for k, v in text_encoder.config.to_dict().items() if k != 'transformers_version'}
    metadata = {'format': 'pt'} | configs_metadata(dict(unet=unet.config, vae=vae.config, text_encoder=text_config,
                                                        scheduler=scheduler_config))
    return atomic_save_safetensors(path, convert_diffusers_to_compvis(state), metadata)
