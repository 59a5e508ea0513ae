"""ViCo's image cross-attention (IMCA, paper Sec. 3.2) and its injection into a diffusers UNet.

The UNet is changed here and nowhere else: an :class:`ImageCrossAttentionBlock` is appended after
the text transformer block of each chosen layer (so ``Transformer2DModel`` runs it between its
``proj_in`` and ``proj_out``), and the text cross-attention of those layers gets a recording
processor. No diffusers forward is copied or replaced.
"""
import torch
from diffusers import Transformer2DModel
from diffusers.models.attention import BasicTransformerBlock
from torch import nn

from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from mmagic_vico.utils.errors import InvalidValueError
from .attention_processors import ImageCrossAttnProcessor, ViCoRecordingAttnProcessor
from .attention_regularizer import attention_regularization
from .attention_store import ViCoAttentionStore
from .object_mask import otsu_mask

#: Flags over the 16 text transformer layers of SD 1.x in down(6) -> mid(1) -> up(9) order:
#: image attention after ids 8, 10, 12, 14, i.e. up_blocks.1.attentions.1, up_blocks.2.attentions.0,
#: up_blocks.2.attentions.2 and up_blocks.3.attentions.1, as in the authors' code.
DEFAULT_IMAGE_CROSS_LAYERS = (0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0)
#: Placements ``image_cross_layers`` may name. 'mmagic': mmagic's port reads the same flags in
#: ``named_modules()`` order (down, up, mid), which puts the image attention one layer later in each up
#: block (up_blocks.1.attentions.2, 2.1, 3.0, 3.2; spec, "mmagic port deviations"): only for weights
#: trained with mmagic.
IMAGE_CROSS_PRESETS = ('original', 'mmagic')


class ImageCrossAttentionBlock(nn.Module):
    """Image cross-attention of the generation tokens to the masked reference tokens (every reference
    token when the store's ``object_mask`` is off).

    A full transformer block of the layer's width (self-attention, cross-attention whose keys and
    values are the un-normalised reference tokens, GEGLU feed-forward): 20d^2 + 17d parameters,
    PyTorch default initialisation as in the original. Reference rows pass through unchanged.
    """

    def __init__(self, dim: int, num_heads: int, store: ViCoAttentionStore, layer: str):
        super().__init__()
        self.image_cross_attention = BasicTransformerBlock(
            dim, num_heads, dim // num_heads, cross_attention_dim=dim)
        self.store, self.layer = store, layer

    def forward(self, hidden_states, *args, **kwargs):
        store = self.store
        if not store.active:
            return hidden_states
        g = store.num_generated
        x, ref = hidden_states[:g], hidden_states[g:]
        placeholder_map, eot_map = store.maps[self.layer]
        mask = otsu_mask(placeholder_map) if store.object_mask else torch.ones_like(placeholder_map, dtype=torch.bool)
        # gradient checkpointing runs the block again in the backward pass: same ops, kept once
        first = self.layer not in store.masks
        if first:
            store.masks[self.layer] = mask
        if store.regularize:
            term = attention_regularization(placeholder_map, eot_map)
            if first:
                store.reg_terms.append(term)
        if store.scale == 0:
            return hidden_states
        # the processor maps generated rows to their reference rows (store.ref_index)
        y = self.image_cross_attention(x, encoder_hidden_states=ref, encoder_attention_mask=mask)
        if store.scale != 1:
            y = x + store.scale * (y - x)
        return torch.cat([y, ref])


def text_transformer_layers(unet) -> list:
    """``[(name, Transformer2DModel)]`` of the UNet in down -> mid -> up order (ids 0..15 on SD 1.x).

    Explicit order: ``named_modules()`` yields the up blocks before the mid block.
    """
    groups = [(f'down_blocks.{i}', b) for i, b in enumerate(unet.down_blocks)]
    groups.append(('mid_block', unet.mid_block))
    groups += [(f'up_blocks.{i}', b) for i, b in enumerate(unet.up_blocks)]
    return [(f'{prefix}.attentions.{j}', layer) for prefix, block in groups
            for j, layer in enumerate(getattr(block, 'attentions', None) or [])]


def check_image_cross_preset(image_cross_layers) -> None:
    if isinstance(image_cross_layers, str) and image_cross_layers not in IMAGE_CROSS_PRESETS:
        raise InvalidValueError(f'image_cross_layers={image_cross_layers!r}: give 16 flags (down -> mid -> up) or a '
                                f'preset, one of {IMAGE_CROSS_PRESETS}.')


def image_cross_flags(unet, image_cross_layers) -> list:
    """The 0/1 flag per text transformer layer (down -> mid -> up) of a flag list or a preset name."""
    if not isinstance(image_cross_layers, str):
        return [int(bool(f)) for f in image_cross_layers]
    check_image_cross_preset(image_cross_layers)
    ours = [name for name, _ in text_transformer_layers(unet)]
    if image_cross_layers == 'original':
        return list(DEFAULT_IMAGE_CROSS_LAYERS)
    iteration_order = [name for name, module in unet.named_modules() if isinstance(module, Transformer2DModel)]
    chosen = {name for name, flag in zip(iteration_order, DEFAULT_IMAGE_CROSS_LAYERS) if flag}
    return [int(name in chosen) for name in ours]


def inject_image_cross_attention(unet, image_cross_layers, store: ViCoAttentionStore) -> list:
    """Add image cross-attention after the flagged text layers; return the names of those layers."""
    layers = text_transformer_layers(unet)
    flags = [bool(f) for f in image_cross_layers]
    if len(flags) != len(layers):
        raise InvalidValueError(
            f'image_cross_layers has {len(flags)} flags but the UNet has {len(layers)} text transformer '
            f'layers (down -> mid -> up); give one flag per layer, e.g. {list(DEFAULT_IMAGE_CROSS_LAYERS)} for SD 1.x.')
    if not any(flags):
        raise InvalidValueError(f'image_cross_layers={list(image_cross_layers)} selects no layer; flag at least one.')
    recording, chosen = {}, []
    for (name, layer), flag in zip(layers, flags):
        if not flag:
            continue
        if len(layer.transformer_blocks) != 1:
            raise InvalidValueError(f'{name} has {len(layer.transformer_blocks)} transformer blocks; ViCo expects '
                                    'the single block per layer of Stable Diffusion 1.x.')
        block = layer.transformer_blocks[0]
        weight = block.norm1.weight
        imca = ImageCrossAttentionBlock(weight.shape[0], block.attn1.heads, store, name)
        layer.transformer_blocks.append(imca.to(device=weight.device))
        recording[f'{name}.transformer_blocks.0.attn2.processor'] = ViCoRecordingAttnProcessor(store, name)
        recording[f'{name}.transformer_blocks.1.image_cross_attention.attn2.processor'] = ImageCrossAttnProcessor(store)
        chosen.append(name)
    unet.set_attn_processor(dict(unet.attn_processors) | recording)  # a dict must name every layer
    store.last_layer = chosen[-1]
    stop_reference_stream_after(unet, chosen[-1], store)
    set_attention_path(unet, store, store.fast)
    return chosen


def set_attention_path(unet, store: ViCoAttentionStore, fast: bool) -> None:
    """Fast path: fused attention wherever nothing is recorded. Straightforward path: eager attention
    everywhere (the reference code's behaviour, kept for tests and the benchmark)."""
    store.fast = fast
    own = (ViCoRecordingAttnProcessor, ImageCrossAttnProcessor)
    unet.set_attn_processor({name: proc if isinstance(proc, own) else (AttnProcessor2_0() if fast else AttnProcessor())
                             for name, proc in unet.attn_processors.items()})


def stop_reference_stream_after(unet, layer: str, store: ViCoAttentionStore) -> bool:
    """Drop the reference rows from the batch after the last image attention layer (spec Sec. 7:
    nothing after it reads them), through forward pre-hooks on the modules that follow it.

    Active only while the store is open with ``truncate``. Returns False (and installs nothing) where
    the layer's position does not allow it: a later resnet of the same block concatenates a skip
    connection of the full batch.
    """
    prefix, _, j = layer.rpartition('.attentions.')
    if not prefix.startswith('up_blocks.'):
        return False
    b, j = int(prefix.split('.')[1]), int(j)
    block = unet.up_blocks[b]
    if j + 2 < len(block.resnets):
        return False

    def cut(x):
        return x[:store.num_generated] if torch.is_tensor(x) and x.shape[0] > store.num_generated else x

    def on():
        return store.active and store.truncate

    def cut_args(module, args):
        return tuple(cut(a) for a in args) if on() else None

    def cut_kwargs(module, args, kwargs):
        if not on():
            return None
        kwargs = {k: tuple(cut(t) for t in v) if k == 'res_hidden_states_tuple' else cut(v) for k, v in kwargs.items()}
        return tuple(cut(a) for a in args), kwargs

    if j + 1 < len(block.resnets):  # the block's next resnet gets cat(hidden, skip), both full batch
        block.resnets[j + 1].register_forward_pre_hook(cut_args)
        block.attentions[j + 1].register_forward_pre_hook(cut_kwargs, with_kwargs=True)
    else:
        block.attentions[j].register_forward_hook(lambda m, args, out: tuple(cut(o) for o in out) if on() else None)
    for later in unet.up_blocks[b + 1:]:
        later.register_forward_pre_hook(cut_kwargs, with_kwargs=True)
    return True
