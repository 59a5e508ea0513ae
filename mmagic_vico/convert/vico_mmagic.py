"""mmagic's ViCo weights (its ``extract_vico_parameters`` output) -> this project's layout.

mmagic keeps the image attention as an attribute of its replacement of each ``Transformer2DModel``
(``unet.model.<layer>.image_cross_attention.<param>``, diffusers' ``BasicTransformerBlock`` names) and the
placeholder in its embedding wrapper's ``ParameterDict`` (``...token_embedding.trainable_embeddings.<token>``).
Its layers follow ``named_modules()`` order, so its weights sit at other layers than the authors': they
load into a model built with ``image_cross_layers='mmagic'``.
"""
import re

from mmagic_vico.utils.errors import InvalidValueError
from .vico_layout import embedding_key, image_attention_key

IMAGE_ATTENTION = re.compile(r'(?:^|\.)((?:down_blocks\.\d+|mid_block|up_blocks\.\d+)\.attentions\.\d+)'
                             r'\.image_cross_attention\.(.+)$')
EMBEDDING = re.compile(r'(?:^|\.)token_embedding\.trainable_embeddings\.(.+)$')


def is_vico_mmagic(state_dict: dict) -> bool:
    return any(IMAGE_ATTENTION.search(k) for k in state_dict) and any(EMBEDDING.search(k) for k in state_dict)


def convert_vico_mmagic_to_vico(state_dict: dict) -> dict:
    """mmagic keys (with or without ``module.`` / ``.model.`` wrappers) -> ours."""
    out, tokens, unknown = {}, [], []
    for key, value in state_dict.items():
        attention, embedding = IMAGE_ATTENTION.search(key), EMBEDDING.search(key)
        if attention:
            out[image_attention_key(attention.group(1), attention.group(2))] = value
        elif embedding:
            tokens.append(embedding.group(1))
            out[embedding_key()] = value if value.ndim == 2 else value[None]
        else:
            unknown.append(key)
    if unknown or len(tokens) != 1:
        raise InvalidValueError(f'not mmagic ViCo weights (extract_vico_parameters output): {len(tokens)} placeholder '
                                f'embeddings {tokens} (one expected), keys of neither kind: {unknown[:3]}. Give the '
                                'file mmagic\'s extract_vico_parameters wrote (.pth or .safetensors).')
    return out
