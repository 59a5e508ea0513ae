from .aesthetic_gradients import AestheticGradients
from .data_preprocessor import ViCoDataPreprocessor
from .dreambooth import DreamBooth, DreamBoothLoRA
from .stable_diffusion import StableDiffusion
from .textual_inversion import TextualInversion
from .vico.vico import ViCo

__all__ = ['AestheticGradients', 'DreamBooth', 'DreamBoothLoRA', 'StableDiffusion', 'TextualInversion', 'ViCo',
           'ViCoDataPreprocessor']
