from .concept_dataset import ViCoConceptDataset
from .learnable_property import CAPTION_TEMPLATES, EXAMPLE_PROMPTS, check_learnable_property
from .transforms import LoadConceptImage, PackConceptImage

__all__ = ['ViCoConceptDataset', 'CAPTION_TEMPLATES', 'EXAMPLE_PROMPTS', 'check_learnable_property', 'LoadConceptImage',
           'PackConceptImage']
