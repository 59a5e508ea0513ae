import torch
import torch.nn.functional as F

from mmagic_vico.models.vico.attention_regularizer import attention_regularization


def test_regularizer_is_mse_of_max_normalised_maps():
    ph, eot = torch.rand(3, 20), torch.rand(3, 20)
    expected = F.mse_loss(ph / ph.max(1, keepdim=True).values, eot / eot.max(1, keepdim=True).values)
    torch.testing.assert_close(attention_regularization(ph, eot), expected)


def test_regularizer_is_zero_for_proportional_maps_and_stops_eot_gradient():
    ph = torch.rand(2, 10, requires_grad=True)
    eot = (ph.detach() * 3).requires_grad_(True)
    loss = attention_regularization(ph, eot)
    assert loss.item() < 1e-12
    other = torch.rand(2, 10, requires_grad=True)
    attention_regularization(ph, other).backward()
    assert ph.grad is not None and ph.grad.abs().sum() > 0
    assert other.grad is None  # sg[.] on the end-of-text map
