"""A learned placeholder embedding (Textual Inversion's, ViCo's) in the layouts AUTOMATIC1111's WebUI and
ComfyUI load; diffusers' ``load_textual_inversion`` reads both too.

- ``a1111``: safetensors with one tensor, ``emb_params``, ``(vectors, width)`` (the name kohya's
  sd-scripts write; A1111 and ComfyUI take a single-tensor file under any name).
- ``a1111-pt``: A1111's own ``.pt`` dict, ``string_to_param`` a plain ``{'*': tensor}`` (no ParameterDict),
  so that it loads with ``torch.load(weights_only=True)``.
"""
from mmagic_vico.utils.errors import InvalidValueError
from .vico_layout import embedding_key

#: What A1111 records under ``string_to_token`` (CLIP's id of ``*``); loaders read the vectors, not this.
A1111_TOKEN = {'*': 265}


def placeholder_embedding(state_dict: dict):
    """``(vectors, width)`` of our weights (``...trainable_embeddings``) or of diffusers' ``learned_embeds``
    (``{token: (width,) or (vectors, width)}``)."""
    ours = [k for k in state_dict if k.endswith('trainable_embeddings')]
    if len(ours) == 1 or len(state_dict) == 1:
        value = state_dict[ours[0] if ours else next(iter(state_dict))]
        if value.ndim in (1, 2):
            return value if value.ndim == 2 else value[None]
    raise InvalidValueError(f'no placeholder embedding: expected our <method>_weights ({embedding_key()}) or '
                            f'diffusers\' learned_embeds (one tensor), got keys {sorted(state_dict)[:4]}.')


def convert_embedding_to_a1111(state_dict: dict) -> dict:
    return {'emb_params': placeholder_embedding(state_dict).detach().contiguous()}


def convert_embedding_to_a1111_pt(state_dict: dict, name: str = 'S*') -> dict:
    return dict(string_to_token=dict(A1111_TOKEN), string_to_param={'*': placeholder_embedding(state_dict).detach()},
                name=name, step=0)
