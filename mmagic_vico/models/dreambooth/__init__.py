from .dreambooth import DreamBooth
from .class_images import generate_class_images

__all__ = ['DreamBooth', 'generate_class_images']
