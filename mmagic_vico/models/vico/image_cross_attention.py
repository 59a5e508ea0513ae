"""ViCo's image cross-attention (IMCA, paper Sec. 3.2) and its injection into a diffusers UNet.

The UNet is changed here and nowhere else: an :class:`ImageCrossAttentionBlock` is appended after
the text transformer block of each chosen layer (so ``Transformer2DModel`` runs it between its
``proj_in`` and ``proj_out``), and the text cross-attention of those layers gets a recording
processor. No diffusers forward is copied or replaced.
"""
import torch
from diffusers.models.attention import BasicTransformerBlock
from torch import nn

from .attention_regularizer import attention_regularization
from .attention_store import ViCoAttentionStore, ViCoRecordingAttnProcessor
from .object_mask import otsu_mask

#: Flags over the 16 text transformer layers of SD 1.x in down(6) -> mid(1) -> up(9) order:
#: image attention after ids 8, 10, 12, 14, i.e. up_blocks.1.attentions.1, up_blocks.2.attentions.0,
#: up_blocks.2.attentions.2 and up_blocks.3.attentions.1, as in the authors' code.
DEFAULT_IMAGE_CROSS_LAYERS = (0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0)


class ImageCrossAttentionBlock(nn.Module):
    """Image cross-attention of the generation tokens to the masked reference tokens.

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
        mask = otsu_mask(placeholder_map)
        store.masks[self.layer] = mask
        if store.regularize:
            store.reg_terms.append(attention_regularization(placeholder_map, eot_map))
        if store.scale == 0:
            return hidden_states
        index = store.ref_index.to(x.device)
        y = self.image_cross_attention(
            x, encoder_hidden_states=ref[index], encoder_attention_mask=mask[index, None, :])
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


def inject_image_cross_attention(unet, image_cross_layers, store: ViCoAttentionStore) -> list:
    """Add image cross-attention after the flagged text layers; return the names of those layers."""
    layers = text_transformer_layers(unet)
    flags = [bool(f) for f in image_cross_layers]
    if len(flags) != len(layers):
        raise ValueError(
            f'image_cross_layers has {len(flags)} flags but the UNet has {len(layers)} text transformer '
            f'layers (down -> mid -> up); give one flag per layer, e.g. {list(DEFAULT_IMAGE_CROSS_LAYERS)} for SD 1.x.')
    if not any(flags):
        raise ValueError(f'image_cross_layers={list(image_cross_layers)} selects no layer; flag at least one.')
    recording, chosen = {}, []
    for (name, layer), flag in zip(layers, flags):
        if not flag:
            continue
        if len(layer.transformer_blocks) != 1:
            raise ValueError(f'{name} has {len(layer.transformer_blocks)} transformer blocks; ViCo expects '
                             'the single block per layer of Stable Diffusion 1.x.')
        block = layer.transformer_blocks[0]
        weight = block.norm1.weight
        imca = ImageCrossAttentionBlock(weight.shape[0], block.attn1.heads, store, name)
        layer.transformer_blocks.append(imca.to(device=weight.device))
        recording[f'{name}.transformer_blocks.0.attn2.processor'] = ViCoRecordingAttnProcessor(store, name)
        chosen.append(name)
    unet.set_attn_processor(dict(unet.attn_processors) | recording)  # a dict must name every layer
    return chosen
