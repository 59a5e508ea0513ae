from .attention_regularizer import attention_regularization
from .attention_store import ViCoAttentionStore
from .image_cross_attention import (DEFAULT_IMAGE_CROSS_LAYERS, ImageCrossAttentionBlock,
                                    inject_image_cross_attention, text_transformer_layers)
from .object_mask import otsu_mask

__all__ = ['attention_regularization', 'ViCoAttentionStore', 'DEFAULT_IMAGE_CROSS_LAYERS', 'ImageCrossAttentionBlock',
           'inject_image_cross_attention', 'text_transformer_layers', 'otsu_mask']
