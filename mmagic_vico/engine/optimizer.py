import logging
import warnings
from contextlib import contextmanager

import torch
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper

from mmagic_vico.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS


class _DropFrozenNotices(logging.Filter):
    def __init__(self):
        super().__init__()
        self.dropped = 0

    def filter(self, record):
        if 'since its requires_grad=False' in record.getMessage():
            self.dropped += 1
            return False
        return True


EIGHT_BIT = {'AdamW8bit': 'AdamW', 'Adam8bit': 'Adam'}


def bitsandbytes_available() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except Exception:  # ImportError, or a broken CUDA setup inside it
        return False
    return True


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class FrozenBaseOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's constructor (``paramwise_cfg.custom_keys`` and all) for a model whose base is frozen:
    one log line for the frozen parameters instead of one warning per parameter of the base. An 8-bit
    optimizer (``AdamW8bit``, DreamBooth's memory saver) falls back to its 32-bit form with a warning
    where bitsandbytes is not available."""

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None):
        optimizer = optim_wrapper_cfg.get('optimizer', {})
        kind = optimizer.get('type') if isinstance(optimizer, dict) else None
        if kind in EIGHT_BIT and not bitsandbytes_available():  # mmengine registers bitsandbytes' own
            warnings.warn(f'optimizer {kind} needs bitsandbytes, which is not installed (or has no GPU '
                          f'here): training with {EIGHT_BIT[kind]} instead (pip install bitsandbytes on a GPU '
                          'machine for the 8-bit optimizer).')
            optimizer['type'] = EIGHT_BIT[kind]
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def __call__(self, model):
        logger = MMLogger.get_current_instance()
        notices = _DropFrozenNotices()
        logger.addFilter(notices)
        try:
            wrapper = super().__call__(model)
        finally:
            logger.removeFilter(notices)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        logger.info(f'optimizer: {trainable:,} trainable parameters; {notices.dropped} frozen tensors left out')
        return wrapper


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """Mixed precision on a CPU: bf16 autocast around the forward pass, no loss scaling (bf16 has
    fp32's range). mmengine's ``AmpOptimWrapper`` is for accelerators only."""

    def __init__(self, dtype: str = 'bfloat16', **kwargs):
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast('cpu', dtype=self.cast_dtype):
            yield


def amp_optim_wrapper(optim_wrapper: dict) -> dict:
    """The ``--amp`` wrapper: bf16 where the accelerator supports it, else fp16 with dynamic loss
    scaling (mmengine's ``AmpOptimWrapper``); bf16 autocast on a CPU."""
    cfg = dict(optim_wrapper)
    if torch.cuda.is_available():
        cfg['type'] = 'AmpOptimWrapper'
        if torch.cuda.is_bf16_supported():
            cfg.setdefault('dtype', 'bfloat16')
        else:
            cfg.setdefault('dtype', 'float16')
            cfg.setdefault('loss_scale', 'dynamic')
    else:
        cfg['type'] = 'CPUAmpOptimWrapper'
        cfg.setdefault('dtype', 'bfloat16')
    return cfg
