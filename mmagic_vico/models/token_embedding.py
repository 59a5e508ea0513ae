"""A learned placeholder token: new rows beside a frozen CLIP token embedding."""
import torch
from torch import nn

from mmagic_vico.utils.errors import InvalidValueError


class PlaceholderEmbedding(nn.Module):
    """Wraps a frozen ``nn.Embedding``; ids past its vocabulary read ``trainable_embeddings``."""

    def __init__(self, base_layer: nn.Embedding, init_vectors: torch.Tensor):
        super().__init__()
        self.base_layer = base_layer
        self.num_base = base_layer.num_embeddings
        self.trainable_embeddings = nn.Parameter(init_vectors.detach().clone().float())

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        new = input_ids >= self.num_base
        base = self.base_layer(input_ids.masked_fill(new, 0))
        if not new.any():
            return base
        extra = self.trainable_embeddings[(input_ids - self.num_base).clamp_min(0)]
        return torch.where(new[..., None], extra.to(base.dtype), base)


def _single_token(tokenizer, text: str) -> list:
    return tokenizer(text, add_special_tokens=False).input_ids


def placeholder_tokens(placeholder: str, num_vectors: int = 1) -> list:
    """The tokens of a placeholder learned as ``num_vectors`` vectors: ``S*``, ``S*_1``, ... (diffusers'
    convention for multi-vector textual inversion)."""
    return [placeholder] + [f'{placeholder}_{i}' for i in range(1, num_vectors)]


def add_placeholder(tokenizer, text_encoder, placeholder: str, initialize_token: str, num_vectors: int = 1) -> int:
    """Add ``placeholder`` (as ``num_vectors`` tokens) to the tokenizer, each embedding initialised from
    ``initialize_token``.

    Returns the (first) placeholder token id. Raises ``ValueError`` for an initialize token that is not
    exactly one CLIP token and for a placeholder that is already a word of the vocabulary.
    """
    if not isinstance(num_vectors, int) or num_vectors < 1:
        raise InvalidValueError(f'num_vectors={num_vectors!r} must be a positive integer (1 in the paper).')
    if not isinstance(placeholder, str) or not placeholder.strip() or any(c.isspace() for c in placeholder):
        raise InvalidValueError(f'placeholder={placeholder!r}: give one word without spaces, e.g. "S*".')
    if not isinstance(initialize_token, str) or not initialize_token.strip():
        raise InvalidValueError(f'initialize_token={initialize_token!r}: give one word naming the class of '
                                'the concept, e.g. "dog" or "toy".')
    init_ids = _single_token(tokenizer, initialize_token)
    if len(init_ids) != 1:
        pieces = tokenizer.convert_ids_to_tokens(init_ids)
        raise InvalidValueError(f'initialize_token={initialize_token!r} is {len(init_ids)} CLIP tokens {pieces}; '
                                'it must be exactly one: pick a single common word such as "dog" or "toy".')
    known = _single_token(tokenizer, placeholder)
    if len(known) == 1 or placeholder in tokenizer.get_vocab():
        raise InvalidValueError(f'placeholder={placeholder!r} is already a token of the vocabulary, so the learned '
                                'concept would overwrite its meaning; pick a string that is not a word, e.g. "S*" or '
                                '"<sks>".')
    tokens = placeholder_tokens(placeholder, num_vectors)
    if tokenizer.add_tokens(tokens) != len(tokens):
        raise InvalidValueError(f'placeholder={placeholder!r} could not be added to the tokenizer; pick another, e.g. '
                                '"S*".')
    embeddings = text_encoder.get_input_embeddings()
    init = embeddings.weight[init_ids[0]][None].repeat(num_vectors, 1)
    text_encoder.set_input_embeddings(PlaceholderEmbedding(embeddings, init))
    return tokenizer.convert_tokens_to_ids(placeholder)
