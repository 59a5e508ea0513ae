from .data_preprocessor import ViCoDataPreprocessor
from .textual_inversion import TextualInversion
from .vico.vico import ViCo

__all__ = ['TextualInversion', 'ViCo', 'ViCoDataPreprocessor']
