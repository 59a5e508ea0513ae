from .data_preprocessor import ViCoDataPreprocessor
from .vico.vico import ViCo

__all__ = ['ViCo', 'ViCoDataPreprocessor']
