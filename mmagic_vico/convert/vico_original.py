"""The ViCo authors' released weights (LDM codebase) -> this project's layout.

Two files: ``embeddings.pt`` / ``embeddings_gs-N.pt``, textual inversion's ``{'string_to_token': ...,
'string_to_param': ParameterDict({'*': (n, 768)})}``, and ``cross_attention.pt`` / ``cross_attention-N.pt``,
``{'diffusion_model.output_blocks.{4,6,8,10}.1.image_cross_attention.<param>': ...}``: the image attention
after the text transformer of those LDM output blocks. Which diffusers layer each LDM block is comes from
diffusers' own CompVis converter, by passing marked tensors through it. The block's parameter names
(``attn1.to_q``, ``attn2.to_out.0``, ``ff.net.0.proj``, ``ff.net.2``, ``norm1``..``norm3``) are LDM's
``BasicTransformerBlock``'s, which diffusers' ``BasicTransformerBlock``, and so ours, keeps.
"""
import os
import re

import torch
from diffusers.loaders.single_file_utils import LDM_UNET_KEY, convert_ldm_unet_checkpoint

from mmagic_vico.utils.errors import InvalidValueError, MissingFileError
from .safe_load import load_torch_file
from .vico_layout import embedding_key, image_attention_key

IMAGE_ATTENTION = re.compile(r'^(?:model\.)?diffusion_model\.((?:input_blocks|output_blocks)\.\d+\.1|middle_block\.1)'
                             r'\.image_cross_attention\.(.+)$')
EMBEDDING = 'string_to_param.'


def ldm_module_map(modules, layers_per_block: int = 2) -> dict:
    """``{LDM UNet module ('output_blocks.4.1'): diffusers module ('up_blocks.1.attentions.1')}``, learned
    from diffusers' converter (every block index below the largest is padded in, as it expects)."""
    modules = sorted(set(modules))
    probe = {}
    for kind in ('input_blocks', 'middle_block', 'output_blocks'):
        top = max((int(m.split('.')[1]) for m in modules if m.startswith(kind + '.')), default=-1)
        probe |= {f'{LDM_UNET_KEY}{kind}.{i}.pad': torch.zeros(1) for i in range(top + 1)}
    probe |= {f'{LDM_UNET_KEY}{m}.probe': torch.full((1,), float(i)) for i, m in enumerate(modules)}
    landed = convert_ldm_unet_checkpoint(probe, dict(layers_per_block=layers_per_block))
    return {modules[int(v[0])]: k.removesuffix('.probe') for k, v in landed.items() if k.endswith('.probe')}


def convert_vico_original_to_vico(state_dict: dict, layers_per_block: int = 2) -> dict:
    """The authors' cross-attention keys plus ``string_to_param.<token>`` (the embedding) -> ours."""
    attention = {k: IMAGE_ATTENTION.match(k) for k in state_dict if IMAGE_ATTENTION.match(k)}
    tokens = [k for k in state_dict if k.startswith(EMBEDDING)]
    unknown = [k for k in state_dict if k not in attention and k not in tokens]
    if unknown or len(tokens) != 1 or not attention:
        raise InvalidValueError(f'not the ViCo authors\' weights: {len(attention)} image attention tensors '
                                f'(diffusion_model.output_blocks.N.1.image_cross_attention.*), placeholder embeddings '
                                f'{tokens} (one expected), other keys {unknown[:3]}. Give the authors\' '
                                'cross_attention.pt (or cross_attention-N.pt) of a ViCo run.')
    layers = ldm_module_map([m.group(1) for m in attention.values()], layers_per_block)
    out = {image_attention_key(layers[m.group(1)], m.group(2)): state_dict[k] for k, m in attention.items()}
    embedding = state_dict[tokens[0]]
    return out | {embedding_key(): embedding if embedding.ndim == 2 else embedding[None]}


def embeddings_beside(cross_attention: str) -> str:
    """``embeddings.pt`` beside ``cross_attention.pt``, ``embeddings_gs-N.pt`` beside ``cross_attention-N.pt``."""
    folder, name = os.path.split(cross_attention)
    stem, ext = os.path.splitext(name)
    step = stem.removeprefix('cross_attention')
    return os.path.join(folder, f'embeddings{"_gs" + step if step else ""}{ext}')


def read_vico_original(cross_attention: str, embeddings: str | None = None) -> dict:
    """Both files (read weights-only; the embeddings' ParameterDict through the allow-list) as one flat
    state dict: the cross-attention keys and ``string_to_param.<token>``."""
    if os.path.isdir(cross_attention):
        cross_attention = os.path.join(cross_attention, 'cross_attention.pt')
    embeddings = embeddings or embeddings_beside(cross_attention)
    if not os.path.isfile(embeddings):
        raise MissingFileError(f'the ViCo authors\' placeholder embedding {embeddings!r} (beside {cross_attention!r}) '
                               'does not exist; give it with --embeddings (embeddings.pt or embeddings_gs-N.pt of the '
                               'same run).')
    attention = load_torch_file(cross_attention, 'ViCo cross-attention weights')
    content = load_torch_file(embeddings, 'ViCo embeddings')
    params = content.get('string_to_param') if isinstance(content, dict) else None
    if not isinstance(attention, dict) or not isinstance(params, dict):
        raise InvalidValueError(f'{embeddings!r} / {cross_attention!r}: expected textual inversion\'s embeddings '
                                '(string_to_param) and a state dict of image cross-attention tensors; give the '
                                'embeddings.pt and cross_attention.pt of one ViCo run.')
    return dict(attention) | {EMBEDDING + token: value for token, value in params.items()}
