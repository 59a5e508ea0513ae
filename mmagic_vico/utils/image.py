"""Reading user images of any mode into 8-bit RGB."""
import os

import numpy as np
from PIL import Image, ImageOps


def to_rgb(image) -> Image.Image:
    """A PIL image (or a path) as upright 8-bit RGB: EXIF orientation applied; alpha composited on
    white; 16-bit and float images rescaled rather than clipped; CMYK, palette and grey converted."""
    if isinstance(image, (str, os.PathLike)):
        with Image.open(image) as f:
            f.load()
            image = f.copy() if f.mode != 'P' else f.convert('RGBA')
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
