"""The object mask of ViCo (paper Sec. 3.3): Otsu's threshold on the reference's attention map."""
import torch

#: The candidate thresholds of the original code: 0.0, 0.1, ..., 0.9.
OTSU_THRESHOLDS = tuple(i / 10 for i in range(10))


def otsu_mask(attention: torch.Tensor) -> torch.Tensor:
    """Object mask from a placeholder attention map by Otsu's method over ten thresholds.

    Args:
        attention: ``(B, N)`` attention of each of N reference patches to the placeholder token.

    Returns:
        ``(B, N)`` bool, True for the object patches (normalised value ``>= tau``). A constant map
        has nothing to threshold and keeps every patch.
    """
    a = attention.detach().float()
    low, high = a.amin(dim=1, keepdim=True), a.amax(dim=1, keepdim=True)
    span = high - low
    a = (a - low) / span.clamp_min(torch.finfo(a.dtype).tiny)
    thresholds = torch.tensor(OTSU_THRESHOLDS, dtype=a.dtype, device=a.device)
    upper = a[:, None, :] >= thresholds[None, :, None]  # (B, T, N)
    n = a.shape[1]
    n1 = upper.sum(-1).to(a.dtype)
    n0 = n - n1
    sum1 = (a[:, None, :] * upper).sum(-1)
    sum0 = a.sum(-1, keepdim=True) - sum1
    mu0 = sum0 / n0.clamp_min(1)
    mu1 = sum1 / n1.clamp_min(1)
    # an empty class scores 0 through its weight, so tau = 0 (empty lower class) never wins
    score = (n0 / n) * (n1 / n) * (mu0 - mu1) ** 2
    best = score.argmax(dim=1)  # first maximum, as the original's strict '>' comparison
    mask = a >= thresholds[best][:, None]
    return mask | (span <= 0)
