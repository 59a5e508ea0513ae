from .concept_dataset import ViCoConceptDataset
from .transforms import LoadConceptImage, PackConceptImage

__all__ = ['ViCoConceptDataset', 'LoadConceptImage', 'PackConceptImage']
