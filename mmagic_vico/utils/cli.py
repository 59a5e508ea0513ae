"""Command-line pieces the tools share: flag types checked as parsed, the sampler's flags, ``--debug``."""
import argparse
import math

from .checks import SEED_LIMIT
from .errors import DEBUG_ENV


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive integer; give 1 or more')
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not an integer >= 0; give 0 or more')
    return value


def image_size(text: str) -> int:
    """argparse type: a positive multiple of 8 (the VAE downsamples by 8)."""
    value = positive_int(text)
    if value % 8:
        raise argparse.ArgumentTypeError(f'{value} is not a multiple of 8; the VAE needs one, e.g. '
                                         f'{max(8, value // 8 * 8)} or {value // 8 * 8 + 8}')
    return value


def finite_number(minimum: float | None = None, maximum: float | None = None, hint: str = ''):
    """argparse type factory: a finite number within ``[minimum, maximum]`` (no nan, no inf)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (minimum is not None and value < minimum) or \
                (maximum is not None and value > maximum):
            bounds = (f' between {minimum} and {maximum}' if minimum is not None and maximum is not None else
                      f' >= {minimum}' if minimum is not None else '')
            raise argparse.ArgumentTypeError(f'{text!r} is not a finite number{bounds}' + (f'; {hint}' if hint else ''))
        return value
    return parse


#: argparse type: a classifier-free guidance scale.
guidance_scale = finite_number(0, hint='7.5 is the default, 1 or less turns classifier-free guidance off')


def seed(text: str) -> int:
    """argparse type: a seed torch, numpy and random all take (0 <= seed < 2**32)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f'{text!r} is not a seed; give an integer from 0 to {SEED_LIMIT - 1}')
    return value


def device(text: str) -> str:
    """argparse type: a torch device this machine has (cpu, cuda, cuda:1, mps)."""
    import torch
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a device; give cpu or cuda (cuda:N)') from None
    available = {'cpu': True, 'cuda': torch.cuda.is_available(),
                 'mps': getattr(torch.backends, 'mps', None) is not None and torch.backends.mps.is_available()}
    if not available.get(dev.type, False) or (dev.type == 'cuda' and (dev.index or 0) >= torch.cuda.device_count()):
        raise argparse.ArgumentTypeError(f'{text!r} is not available on this machine; give cpu'
                                         + (' or cuda' if torch.cuda.is_available() else ''))
    return text


def port(text: str) -> int:
    """argparse type: a TCP port (1-65535)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f'{text!r} is not a port; give a number from 1 to 65535, e.g. 7860')
    return value


def _split_top_level(text: str) -> list:
    """``text`` split at the commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, c in enumerate(text):
        if quote:
            quote = None if c == quote else quote
        elif c in '\'"':
            quote = c
        elif c in '([':
            depth += 1
        elif c in ')]':
            depth -= 1
            if depth < 0:
                raise ValueError(f'unbalanced brackets in {text!r}')
        elif c == ',' and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth or quote:
        raise ValueError(f'unbalanced {"quotes" if quote else "brackets"} in {text!r}')
    return parts + [text[start:]]


def parse_option_value(text: str):
    """A ``--cfg-options`` value: a number, True / False, None, a list ``[a, b]`` or ``a,b``, a tuple ``(a, b)``,
    else text, kept as written (spaces included); a quoted value is text."""
    from mmengine.config import DictAction
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in '\'"':
        return text[1:-1]
    if text[:1] in ('(', '['):
        if text[-1:] != {'(': ')', '[': ']'}[text[0]]:
            raise ValueError(f'unbalanced brackets in {text!r}')
        items = [parse_option_value(p) for p in _split_top_level(text[1:-1]) if p.strip()]
        return tuple(items) if text[0] == '(' else items
    parts = _split_top_level(text)
    if len(parts) > 1:
        return [parse_option_value(p) for p in parts if p.strip()]
    return DictAction._parse_int_float_bool(text)


class ConfigOptions(argparse.Action):
    """``--cfg-options KEY=VALUE ...`` read as mmengine's ``DictAction`` reads them, except that text keeps its
    spaces (mmengine's drops them: ``class_prompt="a photo of cat"`` would become ``aphotoofcat``) and that a
    malformed value is a usage error naming it."""

    def __call__(self, parser, namespace, values, option_string=None):
        options = dict(getattr(namespace, self.dest, None) or {})
        for item in values or []:
            key, sep, text = item.partition('=')
            if not sep or not key:
                raise argparse.ArgumentError(self, f'{item!r} is not KEY=VALUE, e.g. concept_dir=my_dog')
            try:
                options[key] = parse_option_value(text)
            except ValueError as err:
                raise argparse.ArgumentError(self, f'{item}: {err}') from None
        setattr(namespace, self.dest, options)


def add_debug_flag(parser) -> None:
    parser.add_argument('--debug', action='store_true',
                        help=f'show the full traceback of an error (also: {DEBUG_ENV}=1)')


def add_sampling_args(parser, num_images: int = 1) -> None:
    """The sampler's flags: images per prompt, DDIM steps, guidance, size, seed (checked as parsed)."""
    parser.add_argument('--num-images', type=positive_int, default=num_images, help='images per prompt')
    parser.add_argument('--steps', type=positive_int, default=50, help='DDIM steps')
    parser.add_argument('--guidance', type=guidance_scale, default=7.5, help='classifier-free guidance scale')
    parser.add_argument('--height', type=image_size, help='default: the model size (512 on SD 1.5)')
    parser.add_argument('--width', type=image_size)
    parser.add_argument('--seed', type=seed, default=0)
