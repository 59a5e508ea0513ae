import logging

from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor

from mmagic_vico.registry import OPTIM_WRAPPER_CONSTRUCTORS


class _DropFrozenNotices(logging.Filter):
    def __init__(self):
        super().__init__()
        self.dropped = 0

    def filter(self, record):
        if 'since its requires_grad=False' in record.getMessage():
            self.dropped += 1
            return False
        return True


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class FrozenBaseOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's constructor (``paramwise_cfg.custom_keys`` and all) for a model whose base is frozen:
    one log line for the frozen parameters instead of one warning per parameter of the base."""

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
