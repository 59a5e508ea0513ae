from .aesthetic import (AESTHETIC_KEY, aesthetic_text_context, check_aesthetic_embedding, load_aesthetic_embedding,
                        make_aesthetic_embedding)
from .model import AestheticGradients

__all__ = ['AestheticGradients', 'AESTHETIC_KEY', 'aesthetic_text_context', 'check_aesthetic_embedding',
           'load_aesthetic_embedding', 'make_aesthetic_embedding']
