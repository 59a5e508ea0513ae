"""Attention processors of ViCo (installed by :func:`inject_image_cross_attention`)."""
import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from .attention_store import ViCoAttentionStore


def split_heads(attn, x):
    return x.unflatten(-1, (attn.heads, -1)).transpose(1, 2)  # (B, heads, L, d)


def merge_heads(x):
    return x.transpose(1, 2).flatten(2)


def eager_attention(attn, hidden_states, encoder_hidden_states):
    """Attention that returns its probabilities too: ``(output, (B, heads, N, L) probs)``."""
    query = attn.head_to_batch_dim(attn.to_q(hidden_states))
    key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
    value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
    probs = attn.get_attention_scores(query, key)
    out = attn.batch_to_head_dim(torch.bmm(probs, value))
    out = attn.to_out[1](attn.to_out[0](out)) / attn.rescale_output_factor
    return out, probs.unflatten(0, (-1, attn.heads))


class ViCoRecordingAttnProcessor:
    """Text cross-attention of a layer that has image attention (paper Sec. 3.3).

    Generated rows go through the fused kernel (the eager one on the straightforward path);
    reference rows are computed explicitly and their head-mean probabilities at the placeholder /
    end-of-text columns recorded into the store.
    """

    def __init__(self, store: ViCoAttentionStore, layer: str):
        self.store, self.layer = store, layer
        self.fused, self.eager = AttnProcessor2_0(), AttnProcessor()

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs):
        store = self.store
        if not store.active or encoder_hidden_states is None:
            return self.fused(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        g = store.num_generated
        gen_mask = None if attention_mask is None else attention_mask[:g]
        plain = self.fused if store.fast else self.eager
        out_gen = plain(attn, hidden_states[:g], encoder_hidden_states[:g], gen_mask, temb)
        out_ref, probs = eager_attention(attn, hidden_states[g:], encoder_hidden_states[g:])
        store.record(self.layer, probs)
        return torch.cat([out_gen, out_ref.to(out_gen.dtype)])


class ImageCrossAttnProcessor:
    """Cross-attention of the G generated rows to the R reference rows under the object mask.

    ``encoder_hidden_states`` are the R reference rows and ``attention_mask`` their ``(R, N)`` bool
    object mask; ``store.ref_index`` maps generated rows to reference rows. Fast path: keys and values
    projected once per reference row, background keys dropped (exact: a masked key gets zero weight),
    fused kernel. Straightforward path: keys per generated row, boolean mask, eager softmax.
    """

    def __init__(self, store: ViCoAttentionStore):
        self.store = store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs):
        index = self.store.ref_index.to(hidden_states.device)
        query = split_heads(attn, attn.to_q(hidden_states))
        if self.store.fast:
            out = self._grouped(attn, query, encoder_hidden_states, attention_mask, index)
        else:
            key = split_heads(attn, attn.to_k(encoder_hidden_states[index]))
            value = split_heads(attn, attn.to_v(encoder_hidden_states[index]))
            logits = query @ key.transpose(-1, -2) * attn.scale
            logits = logits.masked_fill(~attention_mask[index, None, None, :], float('-inf'))
            out = logits.softmax(-1) @ value
        out = merge_heads(out).to(hidden_states.dtype)
        return attn.to_out[1](attn.to_out[0](out)) / attn.rescale_output_factor

    @staticmethod
    def _grouped(attn, query, reference, mask, index):
        key, value = split_heads(attn, attn.to_k(reference)), split_heads(attn, attn.to_v(reference))
        out = torch.empty_like(query)
        for r in range(reference.shape[0]):
            rows = (index == r).nonzero().squeeze(1)
            if rows.numel():
                keep = mask[r].nonzero().squeeze(1)
                k, v = key[r:r + 1, :, keep], value[r:r + 1, :, keep]
                out[rows] = F.scaled_dot_product_attention(query[rows], k.expand(len(rows), -1, -1, -1),
                                                           v.expand(len(rows), -1, -1, -1))
        return out
