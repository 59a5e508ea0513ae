from .textual_inversion import TextualInversion

__all__ = ['TextualInversion']
