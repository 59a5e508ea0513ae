from .data_preprocessor import ViCoDataPreprocessor
from .dreambooth import DreamBooth
from .textual_inversion import TextualInversion
from .vico.vico import ViCo

__all__ = ['DreamBooth', 'TextualInversion', 'ViCo', 'ViCoDataPreprocessor']
