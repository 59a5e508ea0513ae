"""Reading user images of any mode into 8-bit RGB; the captioned sample grid."""
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from .errors import InvalidValueError, MissingFileError


def to_rgb(image) -> Image.Image:
    """A PIL image (or a path) as upright 8-bit RGB: EXIF orientation applied; alpha composited on
    white; 16-bit and float images rescaled rather than clipped; CMYK, palette and grey converted."""
    if isinstance(image, (str, os.PathLike)):
        image = open_image(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f'expected a PIL image or an image path, got {type(image).__name__}; '
                        'open it with PIL.Image.open(path) first.')
    image = ImageOps.exif_transpose(image)
    if image.mode in ('I;16', 'I;16B', 'I;16L', 'I', 'F'):
        a = np.asarray(image, dtype=np.float64)
        high = 65535.0 if image.mode.startswith('I;16') or a.max() > 255 else 255.0
        image = Image.fromarray(np.clip(a / high * 255.0 + 0.5, 0, 255).astype(np.uint8), 'L')
    if image.mode == 'P':
        image = image.convert('RGBA')
    if image.mode in ('RGBA', 'LA', 'PA') or (image.mode == 'RGB' and 'transparency' in image.info):
        image = image.convert('RGBA')
        background = Image.new('RGBA', image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert('RGB')


def open_image(path) -> Image.Image:
    """Read an image file whole, with errors that name the file and say what to do."""
    if not os.path.isfile(path):
        raise MissingFileError(f'image {str(path)!r} does not exist; give the path of a photo (JPEG, PNG, ...).')
    try:
        with Image.open(path) as f:
            f.load()
            return f.copy() if f.mode != 'P' else f.convert('RGBA')
    except Image.DecompressionBombError as err:
        raise InvalidValueError(f'image {str(path)!r} is too large to open safely ({err}); downscale it (e.g. to 2048 '
                                'px on the long side: the model trains at 512 px).') from err
    except (OSError, SyntaxError, ValueError) as err:  # PIL: unidentified, truncated, broken chunks
        raise InvalidValueError(f'image {str(path)!r} is not a readable image ({type(err).__name__}: {err}); it is '
                                'truncated, corrupt or of an unsupported format: open and re-save it as PNG or '
                                'JPEG.') from err


def caption_font(tile_height: int) -> ImageFont.ImageFont:
    """PIL's default font at a size legible under a tile of ``tile_height`` px: 12 px up to 192 px
    tiles, then a sixteenth of the tile (32 px under 512 px tiles)."""
    return ImageFont.load_default(size=max(12, tile_height // 16))


def _fitting_prefix(word: str, font, width: float) -> int:
    """Characters of ``word`` that fit in ``width`` px (at least one)."""
    n = 1
    while n < len(word) and font.getlength(word[:n + 1]) <= width:
        n += 1
    return n


def wrap_text(text: str, font, width: float, max_lines: int = 4) -> list:
    """``text`` in lines no wider than ``width`` px (a word is cut only if it alone is wider); beyond
    ``max_lines`` the last line ends with an ellipsis."""
    lines, line = [], ''
    for word in text.split():
        while len(word) > 1 and font.getlength(word) > width:
            if line:
                lines, line = lines + [line], ''
            n = _fitting_prefix(word, font, width)
            lines, word = lines + [word[:n]], word[n:]
        candidate = f'{line} {word}'.strip()
        if line and font.getlength(candidate) > width:
            lines, line = lines + [line], word
        else:
            line = candidate
    lines = lines + [line] if line else lines or ['']
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and font.getlength(last + '…') > width:
            last = last[:-1]
        lines = lines[:max_lines - 1] + [last + '…']
    return lines


def make_grid(images: list, columns: int, captions: list | None = None) -> Image.Image:
    """Equally sized images in rows of ``columns``, with a small white gap around each; ``captions``
    (one per row, e.g. its prompt) are written in a strip under their row, wrapped to its width, in a
    font scaled to the tile size. The one grid of the project: training previews, tools/infer.py and
    the evaluation images."""
    if not images:
        raise InvalidValueError('make_grid needs at least one image.')
    w, h = images[0].size
    rows = -(-len(images) // columns)
    if captions is not None and len(captions) != rows:
        raise ValueError(f'make_grid: {len(captions)} captions for {rows} rows; give one per row.')
    gap = max(2, min(w, h) // 64)
    row_width = columns * w + (columns - 1) * gap
    font = caption_font(h) if captions else None
    wrapped = [wrap_text(str(c), font, row_width) for c in captions] if captions else []
    line_height = sum(font.getmetrics()) + 1 if font else 0
    strip = max(len(lines) for lines in wrapped) * line_height + gap if wrapped else 0
    grid = Image.new('RGB', (row_width + 2 * gap, rows * (h + strip + gap) + gap), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for i, image in enumerate(images):
        row, column = divmod(i, columns)
        top = gap + row * (h + strip + gap)
        grid.paste(image, (gap + column * (w + gap), top))
        if column == 0 and wrapped:
            for k, line in enumerate(wrapped[row]):
                draw.text((gap, top + h + gap // 2 + k * line_height), line, fill=(30, 30, 30), font=font)
    return grid


IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def list_images(folder: str) -> list:
    """Sorted image files of a folder (by extension), with a clear error for a missing or empty one."""
    if not os.path.isdir(folder):
        raise MissingFileError(f'concept folder {folder!r} does not exist; put 4-7 photos of the concept there or '
                               'set data_root / concept_dir (--cfg-options concept_dir=NAME).')
    found = sorted(os.listdir(folder))
    images = [os.path.join(folder, f) for f in found if f.lower().endswith(IMAGE_EXTENSIONS)]
    if not images:
        raise MissingFileError(f'concept folder {folder!r} has no image ({", ".join(IMAGE_EXTENSIONS)}); '
                               f'found {found[:10] or "nothing"}. Put 4-7 photos of the concept there.')
    return images
