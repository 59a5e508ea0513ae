"""Side data shared by ViCo's attention processors and image attention blocks for one UNet call.

A ViCo UNet call stacks two streams in one batch: rows ``[0, G)`` are the generation stream,
rows ``[G, G + R)`` the reference stream (the clean reference latent). The caller opens the store
for the call with :meth:`ViCoAttentionStore.open`; outside it the injected modules act exactly as
stock diffusers (image attention off).
"""
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from diffusers.models.attention_processor import AttnProcessor2_0


@dataclass
class ViCoAttentionStore:
    num_generated: int | None = None
    #: ``(G,)`` reference row (0-based among the R reference rows) of each generated row.
    ref_index: torch.Tensor | None = None
    #: ``(R,)`` token columns of the placeholder and of end-of-text in each reference row's prompt.
    placeholder_index: torch.Tensor | None = None
    eot_index: torch.Tensor | None = None
    scale: float = 1.0
    regularize: bool = False
    #: layer name -> (placeholder map, end-of-text map), each ``(R, N)``: last call's recordings.
    maps: dict = field(default_factory=dict)
    #: layer name -> ``(R, N)`` bool object mask of the last call.
    masks: dict = field(default_factory=dict)
    #: one regulariser term per image attention layer (only when ``regularize``).
    reg_terms: list = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.num_generated is not None

    @contextmanager
    def open(self, num_generated, ref_index, placeholder_index, eot_index, scale=1.0, regularize=False):
        """Activate ViCo's two streams for the UNet calls inside the ``with`` block."""
        self.maps, self.masks, self.reg_terms = {}, {}, []
        self.num_generated, self.ref_index = num_generated, ref_index
        self.placeholder_index, self.eot_index = placeholder_index, eot_index
        self.scale, self.regularize = scale, regularize
        try:
            yield self
        finally:
            self.num_generated = self.ref_index = self.placeholder_index = self.eot_index = None

    def record(self, layer: str, probs: torch.Tensor) -> None:
        """Keep the head-mean maps of the placeholder and end-of-text columns.

        Args:
            probs: ``(R, heads, N, L)`` text attention probabilities of the reference rows.
        """
        mean = probs.mean(dim=1)  # (R, N, L)
        rows = torch.arange(mean.shape[0], device=mean.device)
        self.maps[layer] = (mean[rows, :, self.placeholder_index.to(mean.device)],
                            mean[rows, :, self.eot_index.to(mean.device)])


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

    Generated rows go through the fused kernel; reference rows are computed explicitly and their
    head-mean probabilities at the placeholder / end-of-text columns recorded into the store.
    """

    def __init__(self, store: ViCoAttentionStore, layer: str):
        self.store, self.layer = store, layer
        self.fused = AttnProcessor2_0()

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs):
        store = self.store
        if not store.active or encoder_hidden_states is None:
            return self.fused(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        g = store.num_generated
        gen_mask = None if attention_mask is None else attention_mask[:g]
        out_gen = self.fused(attn, hidden_states[:g], encoder_hidden_states[:g], gen_mask, temb)
        out_ref, probs = eager_attention(attn, hidden_states[g:], encoder_hidden_states[g:])
        store.record(self.layer, probs)
        return torch.cat([out_gen, out_ref.to(out_gen.dtype)])
