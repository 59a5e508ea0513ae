from .checkpoint import allow_mmengine_checkpoints
from .optimizer import FrozenBaseOptimWrapperConstructor
from .hooks import ResumeStateHook, ViCoExportHook, ViCoVisualizationHook

allow_mmengine_checkpoints()

__all__ = ['FrozenBaseOptimWrapperConstructor', 'allow_mmengine_checkpoints', 'ResumeStateHook', 'ViCoExportHook', 'ViCoVisualizationHook']
