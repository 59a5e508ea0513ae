from .dreambench import DreamBenchProtocol, read_dreambench
from .metrics import ImageEmbedder, TextImageScorer, mean_pairwise_cosine

__all__ = ['DreamBenchProtocol', 'read_dreambench', 'ImageEmbedder', 'TextImageScorer', 'mean_pairwise_cosine']
