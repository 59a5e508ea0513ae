from .checkpoint import allow_mmengine_checkpoints
from .optimizer import CPUAmpOptimWrapper, FrozenBaseOptimWrapperConstructor, amp_optim_wrapper
from .hooks import ClassImagesHook, ExportWeightsHook, NonFiniteLossHook, ResumeStateHook, SampleGridHook
from .runner import QuietRunner

allow_mmengine_checkpoints()

__all__ = ['ClassImagesHook', 'CPUAmpOptimWrapper', 'FrozenBaseOptimWrapperConstructor', 'amp_optim_wrapper',
           'allow_mmengine_checkpoints', 'ResumeStateHook', 'ExportWeightsHook', 'SampleGridHook', 'NonFiniteLossHook',
           'QuietRunner']
