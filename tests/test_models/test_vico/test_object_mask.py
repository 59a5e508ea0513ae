import numpy as np
import torch

from mmagic_vico.models.vico.object_mask import otsu_mask


def otsu_by_hand(values):
    """Otsu over tau in {0.0, ..., 0.9} on one min-max normalised map, as the original's loop
    (float32 values and thresholds, so that a value equal to a threshold compares as in the model)."""
    values = [np.float32(v) for v in values]
    lo, hi = min(values), max(values)
    if hi == lo:
        return [True] * len(values)
    a = [(v - lo) / (hi - lo) for v in values]
    best_tau, best_score = None, -1.0
    for k in range(10):
        tau = np.float32(k / 10)
        low = [v for v in a if v < tau]
        high = [v for v in a if v >= tau]
        if not low or not high:
            score = 0.0
        else:
            w0, w1 = len(low) / len(a), len(high) / len(a)
            score = w0 * w1 * (float(sum(low)) / len(low) - float(sum(high)) / len(high)) ** 2
        if score > best_score:
            best_tau, best_score = tau, score
    return [v >= best_tau for v in a]


def test_otsu_matches_the_loop_on_random_maps():
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(16, 64, generator=g) ** torch.linspace(0.3, 4, 16)[:, None]
    mask = otsu_mask(maps)
    assert mask.dtype == torch.bool and mask.shape == maps.shape
    for row, got in zip(maps.tolist(), mask.tolist()):
        assert got == otsu_by_hand(row)


def test_values_equal_to_the_threshold_are_object():
    g = torch.Generator().manual_seed(1)
    maps = torch.randint(0, 11, (64, 40), generator=g) / 10  # many values sit exactly on a threshold
    maps[:, 0], maps[:, 1] = 0.0, 1.0
    mask = otsu_mask(maps)
    on_threshold = 0
    for row, got in zip(maps.tolist(), mask.tolist()):
        assert got == otsu_by_hand(row)
        tau = min(v for v, m in zip(row, got) if m)
        on_threshold += any(abs(tau - k / 10) < 1e-6 for k in range(10))
    assert on_threshold > 10  # the case is really exercised


def test_bimodal_map_separates_the_object():
    a = torch.cat([torch.full((10,), 0.9), torch.full((30,), 0.05)])[None] + torch.rand(1, 40) * 0.01
    assert otsu_mask(a)[0].tolist() == [True] * 10 + [False] * 30


def test_constant_map_keeps_every_patch_and_tau_zero_never_wins():
    assert otsu_mask(torch.full((2, 9), 0.3)).all()
    # the minimum patch is always background once a threshold above 0 wins
    a = torch.rand(5, 50)
    mask = otsu_mask(a)
    assert not mask.gather(1, a.argmin(1, keepdim=True)).any()
    assert mask.gather(1, a.argmax(1, keepdim=True)).all()


def test_mask_is_detached_from_the_graph():
    a = torch.rand(2, 16, requires_grad=True)
    assert not otsu_mask(a).requires_grad
