"""Command-line pieces of tools/evaluate.py and tools/compare.py."""
import json
import os

import torch

from mmagic_vico.utils import register_all_modules
from mmagic_vico.utils.cli import add_sampling_args, device, positive_int
from .evaluator import TINY_CLIP, TINY_DINO, DreamBenchEvaluator, default_backbones


def add_protocol_args(p) -> None:
    """The flags that evaluate.py and compare.py share: data, scorers, sampling, output."""
    p.add_argument('--dreambench', required=True, help='the DreamBench folder (prompts_and_classes.txt, <subject>/)')
    p.add_argument('--subjects', nargs='+', required=True)
    p.add_argument('--clip', default=TINY_CLIP, help='local CLIP (ViT-B/32 in the protocol); default: tiny')
    p.add_argument('--dino', default=TINY_DINO, help='local DINO ViT-S/16; default: tiny')
    add_sampling_args(p, num_images=4)
    p.add_argument('--batch-size', type=positive_int, default=8,
                   help='images per infer call (whole prompts while they fit); the images do not depend on it')
    p.add_argument('--device', type=device, default='cuda' if torch.cuda.is_available() else 'cpu')


def sampling(args) -> dict:
    return dict(num_images=args.num_images, seed=args.seed, num_inference_steps=args.steps,
                guidance_scale=args.guidance, height=args.height, width=args.width, batch_size=args.batch_size)


def build_evaluator(args) -> DreamBenchEvaluator:
    register_all_modules()
    return DreamBenchEvaluator(args.dreambench, *default_backbones(args.clip, args.dino), device=args.device)


def write_report(report: dict, out_dir: str, name: str, table: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f'{name}.json'), 'w') as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(out_dir, f'{name}.md'), 'w') as f:
        f.write(table + '\n')
    print(table)
