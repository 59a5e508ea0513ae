"""Command-line pieces the tools share."""
import argparse
import math


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive integer; give 1 or more')
    return value


def image_size(text: str) -> int:
    """argparse type: a positive multiple of 8 (the VAE downsamples by 8)."""
    value = positive_int(text)
    if value % 8:
        raise argparse.ArgumentTypeError(f'{value} is not a multiple of 8; the VAE needs one, e.g. '
                                         f'{max(8, value // 8 * 8)} or {value // 8 * 8 + 8}')
    return value


def guidance_scale(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number >= 0; 7.5 is the default, 1 or less turns '
                                         'classifier-free guidance off')
    return value


def add_sampling_args(parser, num_images: int = 1) -> None:
    """The sampler's flags: images per prompt, DDIM steps, guidance, size, seed (checked as parsed)."""
    parser.add_argument('--num-images', type=positive_int, default=num_images, help='images per prompt')
    parser.add_argument('--steps', type=positive_int, default=50, help='DDIM steps')
    parser.add_argument('--guidance', type=guidance_scale, default=7.5, help='classifier-free guidance scale')
    parser.add_argument('--height', type=image_size, help='default: the model size (512 on SD 1.5)')
    parser.add_argument('--width', type=image_size)
    parser.add_argument('--seed', type=int, default=0)
