"""Stable Diffusion 1.x between the diffusers layout and the original CompVis (LDM) single-file layout.

Diffusers' own single-file converters (``convert_ldm_unet_checkpoint``, ``convert_ldm_vae_checkpoint``,
``convert_ldm_clip_checkpoint``) go CompVis -> diffusers. The other direction is learned from them: the
names of a CompVis checkpoint are listed from LDM's module layout (:func:`compvis_names`), each is given
a uniquely marked tensor, and where diffusers' converters put each mark is the key map, whose inverse
writes the CompVis file. The marks also show which tensors the converters squeeze from LDM's 1x1
convolutions to linear weights, and so get their two trailing dimensions back.

Diffusers-layout state dicts here hold the three models under ``unet.``, ``vae.`` and ``text_encoder.``.
"""
import functools
import re

import torch
from diffusers.loaders.single_file_utils import (DIFFUSERS_TO_LDM_MAPPING, LDM_CLIP_PREFIX_TO_REMOVE, LDM_UNET_KEY,
                                                 LDM_VAE_KEYS, convert_ldm_clip_checkpoint,
                                                 convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint)

from mmagic_vico.utils.errors import InvalidValueError

#: Where each model lives in a CompVis SD 1.x checkpoint.
COMPVIS_PREFIXES = dict(unet=LDM_UNET_KEY, vae=LDM_VAE_KEYS[0], text_encoder=LDM_CLIP_PREFIX_TO_REMOVE[0])
#: LDM's names inside a UNet ResBlock, a VAE ResnetBlock and the VAE's AttnBlock.
UNET_RESBLOCK = ('in_layers.0', 'in_layers.2', 'emb_layers.1', 'out_layers.0', 'out_layers.3', 'skip_connection')
VAE_RESBLOCK = ('norm1', 'conv1', 'norm2', 'conv2', 'nin_shortcut')
VAE_ATTENTION = ('norm', 'q', 'k', 'v', 'proj_out')
PARAMS = ('weight', 'bias')


@functools.cache
def clip_keys_have_text_model() -> bool:
    """Whether the installed transformers' ``CLIPTextModel`` keys start with ``text_model.`` (before 5.6)."""
    from transformers import CLIPTextConfig, CLIPTextModel
    with torch.device('meta'):
        model = CLIPTextModel(CLIPTextConfig(vocab_size=8, hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                                             num_attention_heads=1, max_position_embeddings=4,
                                             bos_token_id=0, eos_token_id=1, pad_token_id=1))
    return next(iter(model.state_dict())).startswith('text_model.')


def _count(keys, pattern: str) -> int:
    found = {int(m.group(1)) for k in keys for m in [re.match(pattern, k)] if m}
    return max(found) + 1 if found else 0


def diffusers_structure(state_dict: dict) -> dict:
    """Levels, layers per level and which levels attend, of a diffusers-layout SD state dict."""
    keys = list(state_dict)
    levels = _count(keys, r'unet\.down_blocks\.(\d+)\.')
    return dict(levels=levels, layers=_count(keys, r'unet\.down_blocks\.0\.resnets\.(\d+)\.'),
                attention=[any(k.startswith(f'unet.down_blocks.{b}.attentions.') for k in keys) for b in range(levels)],
                vae_levels=_count(keys, r'vae\.encoder\.down_blocks\.(\d+)\.'),
                vae_layers=_count(keys, r'vae\.encoder\.down_blocks\.0\.resnets\.(\d+)\.'))


def compvis_structure(state_dict: dict) -> dict:
    """Layers per level and the VAE's levels of a CompVis-layout SD state dict (what diffusers' converters need)."""
    keys = [k[len(LDM_UNET_KEY):] for k in state_dict if k.startswith(LDM_UNET_KEY)]
    first_downsample = min((int(m.group(1)) for k in keys for m in [re.match(r'input_blocks\.(\d+)\.0\.op\.', k)]
                            if m), default=None)
    if first_downsample is None:
        raise InvalidValueError('not a Stable Diffusion 1.x checkpoint in the CompVis layout: it has no '
                                f'{LDM_UNET_KEY}input_blocks.N.0.op (the UNet\'s first downsampler).')
    vae = COMPVIS_PREFIXES['vae']
    return dict(layers=first_downsample - 1, vae_levels=_count(state_dict, re.escape(vae) + r'encoder\.down\.(\d+)\.'))


def _unet_modules(structure: dict, transformer_params) -> list:
    """``[(LDM module, its parameter names)]`` of LDM's UNetModel: input blocks (a ResBlock, a transformer
    where the level attends; a downsampler between levels), the middle block, output blocks (one more
    ResBlock per level; an upsampler after each level but the last)."""
    levels, layers, attention = structure['levels'], structure['layers'], structure['attention']
    modules, index = [], 1
    for level in range(levels):
        for _ in range(layers):
            modules.append((f'input_blocks.{index}.0', UNET_RESBLOCK))
            if attention[level]:
                modules.append((f'input_blocks.{index}.1', transformer_params))
            index += 1
        if level < levels - 1:
            modules.append((f'input_blocks.{index}.0.op', ('',)))
            index += 1
    modules += [('middle_block.0', UNET_RESBLOCK), ('middle_block.1', transformer_params),
                ('middle_block.2', UNET_RESBLOCK)]
    index = 0
    for level in reversed(range(levels)):
        for j in range(layers + 1):
            modules.append((f'output_blocks.{index}.0', UNET_RESBLOCK))
            if attention[level]:
                modules.append((f'output_blocks.{index}.1', transformer_params))
            if level and j == layers:
                modules.append((f'output_blocks.{index}.{2 if attention[level] else 1}.conv', ('',)))
            index += 1
    return modules


def _vae_modules(structure: dict) -> list:
    """``[(LDM module, its parameter names)]`` of LDM's AutoencoderKL encoder and decoder."""
    levels, modules = structure['vae_levels'], []
    for part, blocks, sampler in (('encoder', 'down', 'downsample'), ('decoder', 'up', 'upsample')):
        for level in range(levels):
            for j in range(structure['vae_layers'] + (part == 'decoder')):
                modules.append((f'{part}.{blocks}.{level}.block.{j}', VAE_RESBLOCK))
            if (level < levels - 1) if part == 'encoder' else level:
                modules.append((f'{part}.{blocks}.{level}.{sampler}.conv', ('',)))
        modules += [(f'{part}.mid.block_1', VAE_RESBLOCK), (f'{part}.mid.attn_1', VAE_ATTENTION),
                    (f'{part}.mid.block_2', VAE_RESBLOCK)]
    return modules


def _params(modules) -> list:
    return [f'{m}.{p}.{w}'.replace('..', '.') for m, names in modules for p in names for w in PARAMS]


def compvis_names(structure: dict, transformer_params, text_keys) -> list:
    """Every name a CompVis SD 1.x checkpoint of this structure may hold (LDM's module layout);
    ``transformer_params``: the parameter names inside a transformer layer (LDM's and diffusers' agree)."""
    clip = COMPVIS_PREFIXES['text_encoder'] + ('' if clip_keys_have_text_model() else 'text_model.')
    unet = list(DIFFUSERS_TO_LDM_MAPPING['unet']['layers'].values()) + \
        _params(_unet_modules(structure, transformer_params))
    vae = list(DIFFUSERS_TO_LDM_MAPPING['vae'].values()) + _params(_vae_modules(structure))
    return ([COMPVIS_PREFIXES['unet'] + k for k in unet] + [COMPVIS_PREFIXES['vae'] + k for k in vae]
            + [clip + k for k in text_keys])


def _with_text_model(keys_and_values: dict) -> dict:
    """Diffusers' CLIP converter yields ``text_model.`` keys; drop it where the installed CLIP has none."""
    if clip_keys_have_text_model():
        return keys_and_values
    return {k.removeprefix('text_model.'): v for k, v in keys_and_values.items()}


def _diffusers_converters(state_dict: dict, layers: int, vae_levels: int) -> dict:
    """Diffusers' three CompVis -> diffusers converters, their outputs under ``unet.``/``vae.``/``text_encoder.``."""
    unet = convert_ldm_unet_checkpoint(state_dict, dict(layers_per_block=layers))
    blocks = dict(down_block_types=['DownEncoderBlock2D'] * vae_levels,
                  up_block_types=['UpDecoderBlock2D'] * vae_levels)
    vae = convert_ldm_vae_checkpoint(state_dict, blocks)
    text = _with_text_model(convert_ldm_clip_checkpoint(state_dict))
    return ({f'unet.{k}': v for k, v in unet.items()} | {f'vae.{k}': v for k, v in vae.items()}
            | {f'text_encoder.{k}': v for k, v in text.items() if not k.endswith('position_ids')})


def convert_compvis_to_diffusers(state_dict: dict) -> dict:
    """A CompVis SD 1.x checkpoint (``model.diffusion_model.``, ``first_stage_model.``,
    ``cond_stage_model.transformer.``) -> diffusers layout, by diffusers' own converters."""
    structure = compvis_structure(state_dict)
    return _diffusers_converters(state_dict, structure['layers'], structure['vae_levels'])


def compvis_key_map(state_dict: dict) -> dict:
    """``{diffusers key: (CompVis key, squeezes)}`` for a diffusers-layout SD state dict, learned by passing
    marked tensors through diffusers' converters; ``squeezes``: the converter drops a 1x1 convolution's two
    trailing dimensions there (LDM's VAE attention)."""
    structure = diffusers_structure(state_dict)
    transformer_params = sorted({m.group(1) for k in state_dict
                                 for m in [re.match(r'unet\.\w+(?:\.\d+)?\.attentions\.\d+\.(.+)\.(?:weight|bias)$', k)]
                                 if m})
    text_keys = [k[len('text_encoder.'):] for k in state_dict if k.startswith('text_encoder.')]
    names = compvis_names(structure, transformer_params, text_keys)
    probe = {name: torch.full((1, 1, 1, 1), float(i)) for i, name in enumerate(names)}
    landed = _diffusers_converters(probe, structure['layers'], structure['vae_levels'])
    key_map = {k: (names[int(v.flatten()[0])], v.ndim < 4) for k, v in landed.items() if k in state_dict}
    unnamed = [k for k in state_dict if k not in key_map]
    if unnamed:
        raise InvalidValueError(f'{len(unnamed)} weights have no place in a Stable Diffusion 1.x CompVis checkpoint, '
                                f'e.g. {unnamed[:3]}: only SD 1.x models (UNet2DConditionModel, AutoencoderKL, '
                                'CLIPTextModel) convert to the single-file layout.')
    return key_map


def convert_diffusers_to_compvis(state_dict: dict) -> dict:
    """Diffusers-layout SD 1.x (``unet.``, ``vae.``, ``text_encoder.``) -> a CompVis single-file checkpoint, the
    inverse of :func:`convert_compvis_to_diffusers` (VAE attention back to LDM's 1x1 convolutions)."""
    out = {}
    for key, (name, squeezes) in compvis_key_map(state_dict).items():
        value = state_dict[key]
        out[name] = value[..., None, None] if squeezes and value.ndim == 2 else value
    return out
