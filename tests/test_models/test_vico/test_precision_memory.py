"""Gradient checkpointing and half-precision holding of the frozen base."""
import pytest
import torch

from mmagic_vico.engine import CPUAmpOptimWrapper
from mmagic_vico.registry import MODELS

from .test_fast_path import training_batch


def losses_and_grads(vico, inputs, samples):
    torch.manual_seed(3)
    losses = vico.loss(inputs, samples)
    params = [p for p in vico.parameters() if p.requires_grad]
    return losses, torch.autograd.grad(losses['loss_diffusion'] + losses['loss_reg'], params)


@pytest.mark.parametrize('fast', [True, False])
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tiny_cfg, tiny_path, fast):
    inputs, samples = training_batch(2)
    inputs = {k: v.double() for k, v in inputs.items()}
    results = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        vico = MODELS.build(tiny_cfg.model | dict(gradient_checkpointing=checkpointing, fast_path=fast)).double()
        vico.train()
        results.append(losses_and_grads(vico, inputs, samples))
    (l0, g0), (l1, g1) = results
    assert vico.unet.is_gradient_checkpointing
    for key in l0:
        torch.testing.assert_close(l0[key], l1[key], rtol=1e-10, atol=1e-14)
    for a, b in zip(g0, g1):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)


def test_frozen_base_in_bf16_keeps_trainable_weights_and_optimizer_state_fp32(tiny_cfg, tiny_path, reference_image):
    vico = MODELS.build(tiny_cfg.model | dict(frozen_dtype='bf16'))
    frozen = {p.dtype for p in vico.parameters() if not p.requires_grad}
    trainable = {p.dtype for p in vico.parameters() if p.requires_grad}
    assert frozen == {torch.bfloat16} and trainable == {torch.float32}
    wrapper = CPUAmpOptimWrapper(optimizer=torch.optim.AdamW([p for p in vico.parameters() if p.requires_grad],
                                                             lr=1e-3))
    inputs, samples = training_batch(2)
    data = dict(inputs=inputs, data_samples=samples)
    before = {n: p.detach().clone() for n, p in vico.named_parameters() if p.requires_grad}
    log = vico.train_step(data, wrapper)
    assert torch.isfinite(log['loss'])
    changed = [n for n, p in vico.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert changed and all(p.dtype == torch.float32 for p in vico.parameters() if p.requires_grad)
    state = wrapper.optimizer.state
    assert state and all(v.dtype == torch.float32 for s in state.values() for k, v in s.items() if k != 'step')
    out = vico.infer('a photo of S*', reference_image, height=64, width=64, num_inference_steps=2, seed=0,
                     show_progress=False)['samples']
    assert out[0].size == (64, 64)


def test_bad_frozen_dtype_fails(tiny_cfg, tiny_path):
    with pytest.raises(ValueError, match='frozen_dtype'):
        MODELS.build(tiny_cfg.model | dict(frozen_dtype='int8'))


def test_amp_flag_picks_a_wrapper_for_this_machine():
    from mmagic_vico.engine import amp_optim_wrapper
    cfg = amp_optim_wrapper(dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)))
    assert cfg['type'] == ('AmpOptimWrapper' if torch.cuda.is_available() else 'CPUAmpOptimWrapper')
    assert cfg['optimizer'] == dict(type='AdamW', lr=1e-3)
