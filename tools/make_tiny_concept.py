"""Render the small concept shipped in data/vico/tiny_toy: a toy robot in 5 poses and scenes.

The project makes these images itself (no photo is copied), so the embedded default trains on a
fresh machine. Deterministic: re-running writes the same files.

    python tools/make_tiny_concept.py [OUT_DIR] [--num 5] [--size 256]
"""
import argparse
import os
import random

from PIL import Image, ImageDraw, ImageFilter

from mmagic_vico.utils import checks
from mmagic_vico.utils.atomic import atomic_save_image
from mmagic_vico.utils.cli import add_debug_flag, positive_int
from mmagic_vico.utils.errors import run_tool


def background(rng: random.Random, size: int) -> Image.Image:
    top = tuple(rng.randint(60, 230) for _ in range(3))
    bottom = tuple(rng.randint(20, 200) for _ in range(3))
    image = Image.new('RGB', (size, size))
    draw = ImageDraw.Draw(image)
    for y in range(size):
        t = y / (size - 1)
        draw.line([(0, y), (size, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom)))
    floor = round(size * rng.uniform(0.62, 0.78))
    draw.rectangle([0, floor, size, size], fill=tuple(max(0, c - 40) for c in bottom))
    return image


def toy(size: int) -> Image.Image:
    """The concept itself, on a transparent canvas: red body, yellow head, blue eyes, antenna."""
    s = size
    image = Image.new('RGBA', (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(image)
    d.rectangle([0.30 * s, 0.45 * s, 0.70 * s, 0.85 * s], fill=(200, 30, 40, 255), outline=(90, 10, 15, 255), width=3)
    d.rectangle([0.38 * s, 0.85 * s, 0.47 * s, 0.98 * s], fill=(60, 60, 70, 255))
    d.rectangle([0.53 * s, 0.85 * s, 0.62 * s, 0.98 * s], fill=(60, 60, 70, 255))
    d.rectangle([0.18 * s, 0.50 * s, 0.30 * s, 0.58 * s], fill=(230, 190, 30, 255))
    d.rectangle([0.70 * s, 0.50 * s, 0.82 * s, 0.58 * s], fill=(230, 190, 30, 255))
    d.rounded_rectangle([0.33 * s, 0.16 * s, 0.67 * s, 0.45 * s], radius=int(0.06 * s), fill=(240, 200, 40, 255),
                        outline=(120, 90, 10, 255), width=3)
    d.ellipse([0.39 * s, 0.24 * s, 0.47 * s, 0.32 * s], fill=(30, 90, 220, 255))
    d.ellipse([0.53 * s, 0.24 * s, 0.61 * s, 0.32 * s], fill=(30, 90, 220, 255))
    d.line([0.50 * s, 0.16 * s, 0.50 * s, 0.05 * s], fill=(80, 80, 80, 255), width=3)
    d.ellipse([0.46 * s, 0.02 * s, 0.54 * s, 0.09 * s], fill=(200, 30, 40, 255))
    d.rectangle([0.42 * s, 0.55 * s, 0.58 * s, 0.68 * s], fill=(250, 250, 250, 255))
    return image


def render(index: int, size: int, seed: int = 0) -> Image.Image:
    rng = random.Random(seed * 1000 + index)
    image = background(rng, size)
    scale = rng.uniform(0.55, 0.8)
    figure = toy(round(size * scale)).rotate(rng.uniform(-12, 12), resample=Image.BICUBIC, expand=False)
    x = rng.randint(0, size - figure.width)
    y = rng.randint(0, size - figure.height)
    shadow = Image.new('RGBA', figure.size, (0, 0, 0, 90))
    shadow.putalpha(figure.getchannel('A').point(lambda a: a * 90 // 255))
    image.paste(shadow.filter(ImageFilter.GaussianBlur(4)), (x + 5, y + 5), shadow.filter(ImageFilter.GaussianBlur(4)))
    image.paste(figure, (x, y), figure)
    return image


def image_side(text: str) -> int:
    """argparse type: a side of at least 32 px (the toy's details vanish below)."""
    value = positive_int(text)
    if value < 32:
        raise argparse.ArgumentTypeError(f'{value} is too small; give 32 or more (256 is the default)')
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out_dir', nargs='?', default=os.path.join('data', 'vico', 'tiny_toy'))
    parser.add_argument('--num', type=positive_int, default=5)
    parser.add_argument('--size', type=image_side, default=256)
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    checks.output_dir(args.out_dir, 'OUT_DIR')
    for i in range(args.num):
        path = os.path.join(args.out_dir, f'{i:02d}.png')
        atomic_save_image(path, render(i, args.size), optimize=True)
        print(path)


if __name__ == '__main__':
    run_tool(main)
