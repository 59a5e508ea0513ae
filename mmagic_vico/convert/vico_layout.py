"""The names of this project's ViCo weights (an API: the seed README's extraction filters on the markers)."""
import re

from .compvis import clip_keys_have_text_model

#: ``unet.<layer>.transformer_blocks.1.image_cross_attention.<param>``: the image attention block is appended
#: after the layer's one text transformer block (models/vico/image_cross_attention.py).
IMAGE_ATTENTION_KEY = re.compile(r'^unet\.(.+)\.transformer_blocks\.1\.image_cross_attention\.(.+)$')


def image_attention_key(layer: str, param: str) -> str:
    """Our name of parameter ``param`` of the image attention after text transformer layer ``layer``."""
    return f'unet.{layer}.transformer_blocks.1.image_cross_attention.{param}'


def embedding_key() -> str:
    """Our name of the placeholder's embedding, ``(num_vectors, width)``."""
    return f'text_encoder.{"text_model." if clip_keys_have_text_model() else ""}embeddings.token_embedding.' \
           'trainable_embeddings'


def image_attention_layers(state_dict: dict) -> list:
    """The text transformer layers (diffusers names) with image attention in a state dict of our layout."""
    return sorted({m.group(1) for k in state_dict for m in [IMAGE_ATTENTION_KEY.match(k)] if m})
