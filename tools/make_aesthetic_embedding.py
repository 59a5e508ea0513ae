"""The aesthetic embedding of a folder of images (Aesthetic Gradients): the mean of their
L2-normalised CLIP image embeddings, saved as safetensors ``{'aesthetic_embedding': (1, D)}``.

    python tools/make_aesthetic_embedding.py FOLDER OUT.safetensors --clip /path/to/clip-vit-large-patch14
    python tools/make_aesthetic_embedding.py data/vico/tiny_toy work_dirs/toy_aesthetic.safetensors   # tiny CLIP
"""
import argparse
import os

from mmagic_vico.models.aesthetic_gradients import make_aesthetic_embedding
from mmagic_vico.models.tiny_sd import build_tiny_clip, ensure_tiny_sd
from mmagic_vico.utils import checks
from mmagic_vico.utils.cli import add_debug_flag, positive_int
from mmagic_vico.utils.errors import run_tool
from mmagic_vico.utils.image import list_images
from mmagic_vico.utils.logging import add_verbose_flag, setup_logging

TINY_SD = os.path.join('data', 'tiny_sd15')
TINY_CLIP = os.path.join('data', 'tiny_clip')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('folder', help='images whose style / subject to steer towards')
    parser.add_argument('out', help='output .safetensors')
    parser.add_argument('--clip', default=TINY_CLIP, help='local CLIP folder (transformers layout); default: the '
                        'embedded tiny CLIP matching the tiny SD (built on first use)')
    parser.add_argument('--batch-size', type=positive_int, default=16, help='images per CLIP batch')
    add_verbose_flag(parser)
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    checks.output_file(args.out, 'OUT')  # before any work: a folder or a read-only place fails here
    list_images(args.folder)  # a missing or empty FOLDER too
    if args.clip == TINY_CLIP and not os.path.isdir(TINY_CLIP):
        ensure_tiny_sd(TINY_SD)
        build_tiny_clip(TINY_CLIP, TINY_SD)
    if not os.path.isdir(args.clip):
        parser.error(f'--clip {args.clip!r} is not a folder: give a local CLIP model folder (e.g. a download of '
                     'openai/clip-vit-large-patch14, the CLIP of SD 1.5).')
    embedding = make_aesthetic_embedding(args.folder, args.clip, args.out, args.batch_size)
    print(f'wrote {args.out}: shape {tuple(embedding.shape)}')


if __name__ == '__main__':
    run_tool(main)
