"""Side data shared by ViCo's attention processors and image attention blocks for one UNet call.

A ViCo UNet call stacks two streams in one batch: rows ``[0, G)`` are the generation stream,
rows ``[G, G + R)`` the reference stream (the clean reference latent). The caller opens the store
for the call with :meth:`ViCoAttentionStore.open`; outside it the injected modules act exactly as
stock diffusers (image attention off).
"""
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch


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
    truncate: bool = False
    #: persistent: the fast path (fused attention, keys projected once per reference row, masked keys
    #: dropped, reference stream stopped after the last image attention layer) or the straightforward one
    fast: bool = True
    #: persistent: the name of the last layer with image attention (where the reference stream may stop)
    last_layer: str | None = None
    #: persistent: True: the image attention sees the reference's object patches (Otsu mask); False: all
    object_mask: bool = True
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
    def open(self, num_generated, ref_index, placeholder_index, eot_index, scale=1.0, regularize=False,
             truncate=False, keep_open=False):
        """Activate ViCo's two streams for the UNet calls inside the ``with`` block.

        ``truncate``: drop the reference rows after the last image attention layer, so that the UNet
        returns the generated rows only. ``keep_open``: stay active after the block, until the next
        ``open`` (gradient checkpointing runs the blocks again during the backward pass).
        """
        self.maps, self.masks, self.reg_terms = {}, {}, []
        self.num_generated, self.ref_index = num_generated, ref_index
        self.placeholder_index, self.eot_index = placeholder_index, eot_index
        self.scale, self.regularize, self.truncate = scale, regularize, truncate
        try:
            yield self
        finally:
            if not keep_open:
                self.close()

    def close(self) -> None:
        """Back to stock behaviour: the injected modules pass everything through."""
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
