"""Convert weights between this project's files and the files other tools load.

    python tools/convert_weights.py compvis diffusers v1-5-pruned-emaonly.safetensors /data/sd15
    python tools/convert_weights.py dreambooth compvis work_dirs/dreambooth/my_dog/dreambooth_weights.safetensors \\
        db.safetensors
    python tools/convert_weights.py vico-original vico logs/dog/checkpoints/cross_attention.pt dog.safetensors
    python tools/convert_weights.py vico-mmagic vico dog.pth dog_mmagic.safetensors
    python tools/convert_weights.py embedding a1111 work_dirs/vico/my_dog/vico_weights.safetensors S.safetensors
    python tools/convert_weights.py lora kohya work_dirs/dreambooth_lora/my_dog/pytorch_lora_weights.safetensors \\
        db_kohya.safetensors

Nothing is unpickled: .pt / .pth / .ckpt inputs are read weights-only (plus textual inversion's
ParameterDict, rebuilt as plain data), and outputs are written atomically.
"""
import argparse

from mmagic_vico.convert.formats import CONVERSIONS, FORMATS, convert_file
from mmagic_vico.utils.cli import add_debug_flag
from mmagic_vico.utils.errors import run_tool


def build_parser() -> argparse.ArgumentParser:
    formats = '\n'.join(f'  {name:<14} {text}' for name, text in FORMATS.items())
    pairs = '\n'.join(f'  {a} -> {b}' for a, b in CONVERSIONS)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=f'formats:\n{formats}\n\nconversions:\n{pairs}')
    p.add_argument('source_format', choices=sorted(FORMATS), metavar='FROM', help='format of INPUT (see below)')
    p.add_argument('target_format', choices=sorted(FORMATS), metavar='TO', help='format to write')
    p.add_argument('input', help='file (or folder, for diffusers / vico-original) to convert')
    p.add_argument('output', help='file (or folder, for diffusers) to write')
    p.add_argument('--base', help='dreambooth: the base model (folder or single file); default: the one the '
                   'weights name')
    p.add_argument('--embeddings', help="vico-original: the authors' embeddings file; default: the one beside INPUT")
    p.add_argument('--placeholder', default='S*', help='the placeholder the converted embedding stands for '
                   '(vico, a1111-pt); default S*')
    add_debug_flag(p)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.source_format, args.target_format) not in CONVERSIONS:
        parser.error(f'no conversion from {args.source_format} to {args.target_format}; the pairs are listed in --help')
    out = convert_file(args.source_format, args.target_format, args.input, args.output, args)
    print(f'wrote {out} ({args.target_format}: {FORMATS[args.target_format]})')
    return out


if __name__ == '__main__':
    run_tool(main)
