"""What a concept's images teach: one object they all show, or a style they all share.

Textual Inversion (Gal et al., arXiv 2208.01618) trains a style with style captions ("a painting in
the style of S*") instead of object captions ("a photo of a S*"); the choice is ``learnable_property``.
"""
from mmagic_vico.utils.errors import InvalidValueError

#: learnable_property -> its caption templates (one per line, ``{}`` is the placeholder).
CAPTION_TEMPLATES = {'object': 'data/vico/imagenet_templates_small.txt',
                     'style': 'data/vico/style_templates_small.txt'}
#: learnable_property -> a prompt that shows the learned concept (``{}`` is the placeholder).
EXAMPLE_PROMPTS = {'object': 'a photo of {}', 'style': 'a painting in the style of {}'}


def check_learnable_property(value) -> str:
    """``value`` if it is ``'object'`` or ``'style'``, else a user error (a ValueError) naming it and both choices."""
    if not isinstance(value, str) or value not in CAPTION_TEMPLATES:
        raise InvalidValueError(f"learnable_property={value!r} is neither 'object' nor 'style': use 'object' when the "
                                'images show one thing (captions "a photo of a S*", ...) or \'style\' when they '
                                'share a look (captions "a painting in the style of S*", ...), e.g. --cfg-options '
                                'learnable_property=style.')
    return value
