"""Checks of single values given by the user: numbers, counts, image sizes, seeds, prompt templates,
text files and output paths. Each raises a user error naming the input (``name=value``) and the fix."""
import math
import os
import string

from .errors import InvalidValueError, MissingFileError

#: Seeds go to torch, numpy and random alike: numpy takes 0 <= seed < 2**32.
SEED_LIMIT = 2 ** 32


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _hint(hint: str) -> str:
    return f' ({hint})' if hint else ''


def number(name: str, value, minimum=None, maximum=None, hint: str = ''):
    """A finite number (not a bool, not a string), within ``[minimum, maximum]`` when given."""
    low_ok = minimum is None or (is_number(value) and value >= minimum)
    high_ok = maximum is None or (is_number(value) and value <= maximum)
    if is_number(value) and math.isfinite(value) and low_ok and high_ok:
        return value
    bounds = (f' between {minimum} and {maximum}' if minimum is not None and maximum is not None else
              f' >= {minimum}' if minimum is not None else f' <= {maximum}' if maximum is not None else '')
    raise InvalidValueError(f'{name}={value!r} must be a finite number{bounds}{_hint(hint)}.')


def integer(name: str, value, minimum: int = 0, hint: str = '') -> int:
    """An integer (not a bool, not a float) >= ``minimum``."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return value
    kind = 'a positive integer' if minimum == 1 else f'an integer >= {minimum}'
    raise InvalidValueError(f'{name}={value!r} must be {kind}{_hint(hint)}.')


def positive_int(name: str, value, hint: str = '') -> int:
    return integer(name, value, 1, hint)


def seed(name: str, value) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < SEED_LIMIT:
        return value
    raise InvalidValueError(f'{name}={value!r}: a seed is an integer from 0 to {SEED_LIMIT - 1} (e.g. 0).')


def image_size(name: str, value, default: int | None = None, allow_none: bool = True):
    """None (the model's size) or a positive multiple of 8 (the VAE downsamples by 8)."""
    if value is None and allow_none:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value > 0 and value % 8 == 0:
        return value
    example = default or (max(8, value // 8 * 8) if isinstance(value, int) and value > 0 else 512)
    raise InvalidValueError(f'{name}={value!r} must be a positive multiple of 8 (e.g. {example}).')


def template(name: str, text, placeholder: str | None = 'S*') -> str:
    """A prompt or caption template whose only fields are ``{}`` (the placeholder)."""
    if not isinstance(text, str):
        raise InvalidValueError(f'{name}={text!r}: give a text with "{{}}" where the placeholder goes, '
                                'e.g. "a photo of {}".')
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as err:  # a lone "{" or "}"
        raise InvalidValueError(f'{name}={text!r} is not a valid template ({err}); write "{{}}" where the '
                                'placeholder goes and double a literal brace ("{{{{" / "}}}}").') from err
    bad = [f for f in fields if f not in ('', '0')]
    if bad:
        raise InvalidValueError(f'{name}={text!r} has the field(s) {["{" + f + "}" for f in bad]}; the only field a '
                                f'template takes is "{{}}" (the placeholder {placeholder!r}): e.g. "a photo of {{}}".')
    return text


def read_text(path: str, name: str) -> str:
    """A text file's content as UTF-8, with a clear error for a missing or mis-encoded file."""
    if not os.path.isfile(path):
        raise MissingFileError(f'{name} {path!r} does not exist' + (' (it is a folder)' if os.path.isdir(path) else '')
                               + '; give the path of a text file.')
    with open(path, 'rb') as f:
        data = f.read()
    try:
        return data.decode('utf-8-sig')
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b'\n') + 1
        raise InvalidValueError(f'{name} {path!r} is not UTF-8 text (byte {data[err.start]:#04x} on line {line}); '
                                'save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 FILE > NEW).') from err


def _nearest_existing(path: str) -> str:
    folder = os.path.abspath(path)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return folder


def _writable(path: str) -> bool:
    """Writable by this process (its effective user, where the platform can tell)."""
    return os.access(path, os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids)


def output_dir(path: str, name: str) -> str:
    """A folder to write into: an existing folder, or one that can be made; not a file, not read-only."""
    where = _nearest_existing(path)
    if where == os.path.abspath(path) and not os.path.isdir(where):
        raise InvalidValueError(f'{name} {path!r} is a file, not a folder; give a folder (it is made if missing).')
    if not os.path.isdir(where):
        raise InvalidValueError(f'{name} {path!r} cannot be made: {where!r} is a file; give a folder elsewhere.')
    if not _writable(where):
        raise InvalidValueError(f'{name} {path!r} is not writable ({where!r} is read-only for this user); give a '
                                'folder you can write to.')
    return path


def output_file(path: str, name: str) -> str:
    """A file to write: not an existing folder, in a folder that exists or can be made and is writable."""
    if os.path.isdir(path):
        raise InvalidValueError(f'{name} {path!r} is a folder; give a file name, e.g. '
                                f'{os.path.join(path, "out.safetensors")!r}.')
    if os.path.exists(path) and not os.access(path, os.W_OK, effective_ids=os.access in os.supports_effective_ids):
        raise InvalidValueError(f'{name} {path!r} exists and is read-only; give another file name.')
    output_dir(os.path.dirname(os.path.abspath(path)), f'the folder of {name}')
    return path


_GUIDANCE = '7.5 is the default; 1 or less turns classifier-free guidance off'
#: The sampler's settings, checked by name wherever they enter (infer, sample grids, class images, flags).
_SAMPLING = {
    'num_inference_steps': lambda n, v: positive_int(n, v, '50 is the default'),
    'num_images_per_prompt': lambda n, v: positive_int(n, v, 'images per prompt, e.g. 1'),
    'num_images': lambda n, v: positive_int(n, v, 'e.g. 2'),
    'batch_size': lambda n, v: positive_int(n, v, 'e.g. 4'),
    'guidance_scale': lambda n, v: number(n, v, minimum=0, hint=_GUIDANCE),
    'eta': lambda n, v: number(n, v, 0, 1, hint='0: deterministic DDIM, the default; 1: DDPM-like'),
    'height': image_size,
    'width': image_size,
    'seed': lambda n, v: v if v is None else seed(n, v),
}


def sampling(**settings) -> dict:
    """Check sampler settings by name (steps, images, guidance, eta, size, seed); returns them."""
    for name, value in settings.items():
        _SAMPLING.get(name, lambda n, v: v)(name, value)
    return settings
