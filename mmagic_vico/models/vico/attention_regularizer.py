"""The attention regulariser of ViCo (paper Sec. 3.4, Eq. 6)."""
import torch
import torch.nn.functional as F


def attention_regularization(placeholder_map: torch.Tensor, eot_map: torch.Tensor) -> torch.Tensor:
    """MSE between the max-normalised placeholder map and the (stopped) end-of-text map.

    Both maps are ``(B, N)`` head-mean text attention of the reference patches; each sample is
    normalised by its own maximum. Gradients flow only through ``placeholder_map``.
    """
    eps = torch.finfo(placeholder_map.dtype).tiny
    ph = placeholder_map / placeholder_map.amax(dim=1, keepdim=True).clamp_min(eps)
    eot = eot_map.detach()
    eot = eot / eot.amax(dim=1, keepdim=True).clamp_min(eps)
    return F.mse_loss(ph.float(), eot.float())
