from .dreambooth import DreamBooth
from .dreambooth_lora import DreamBoothLoRA
from .class_images import generate_class_images

__all__ = ['DreamBooth', 'DreamBoothLoRA', 'generate_class_images']
