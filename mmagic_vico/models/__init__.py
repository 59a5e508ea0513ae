from .aesthetic_gradients import AestheticGradients
from .data_preprocessor import ViCoDataPreprocessor
from .dreambooth import DreamBooth, DreamBoothLoRA
from .textual_inversion import TextualInversion
from .vico.vico import ViCo

__all__ = ['AestheticGradients', 'DreamBooth', 'DreamBoothLoRA', 'TextualInversion', 'ViCo', 'ViCoDataPreprocessor']
