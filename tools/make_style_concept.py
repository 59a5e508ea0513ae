"""Render the example style shipped in data/vico/linocut: varied toy scenes, all in one printmaking look.

The content changes from image to image (object, colour, background) and the look stays: what a style
concept is. Scenes come from the toy-world renderer, the look from ``mmagic_vico.toyworld.styles``.
Deterministic: re-running writes the same files.

    python tools/make_style_concept.py [OUT_DIR] [--style linocut] [--size 256]
"""
import argparse
import os

from PIL import Image

from mmagic_vico.toyworld.render import Scene, render_scene
from mmagic_vico.toyworld.styles import STYLES
from mmagic_vico.utils import checks
from mmagic_vico.utils.cli import add_debug_flag, positive_int
from mmagic_vico.utils.errors import run_tool

#: Varied content: every image shows another object, colour and background.
SCENES = (Scene('beach', 'dog', 'orange', 11), Scene('room', 'cup', 'blue', 12), Scene('grass', 'car', 'red', 13),
          Scene('snow', 'robot', 'purple', 14), Scene('street', 'ball', 'yellow', 15))


def render_styled(scene: Scene, style: str, size: int):
    """One scene in ``style`` as a PIL image of ``size`` x ``size``."""
    image, _ = render_scene(scene, size=size)
    return Image.fromarray(STYLES[style](image))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out_dir', nargs='?', help='default: data/vico/<style>')
    parser.add_argument('--style', choices=sorted(STYLES), default='linocut')
    parser.add_argument('--size', type=positive_int, default=256)
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    out_dir = checks.output_dir(args.out_dir or os.path.join('data', 'vico', args.style), 'OUT_DIR')
    os.makedirs(out_dir, exist_ok=True)
    for i, scene in enumerate(SCENES):
        path = os.path.join(out_dir, f'{i:02d}_{scene.cls}.png')
        render_styled(scene, args.style, args.size).save(path, optimize=True)
        print(path)


if __name__ == '__main__':
    run_tool(main)
