"""Reading user images of any mode into 8-bit RGB."""
import os

import numpy as np
from PIL import Image, ImageOps

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


def make_grid(images: list, columns: int) -> Image.Image:
    """Paste equally sized images into a grid, ``columns`` per row."""
    if not images:
        raise InvalidValueError('make_grid needs at least one image.')
    w, h = images[0].size
    rows = -(-len(images) // columns)
    grid = Image.new('RGB', (w * columns, h * rows), (255, 255, 255))
    for i, image in enumerate(images):
        grid.paste(image, ((i % columns) * w, (i // columns) * h))
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
