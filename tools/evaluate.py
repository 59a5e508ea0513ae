"""DreamBench evaluation of a trained concept: CLIP-T, CLIP-I and DINO.

For each subject: the 25 DreamBench prompts (object or live list) x N images with fixed seeds are
generated with the method's config and weights (images already there are reused, so an interrupted
run resumes), then scored against the subject's real photos. Writes scores.json and scores.md.

    python tools/evaluate.py configs/vico/vico.py --dreambench /data/dreambench --subjects dog7 teapot \
        --weights 'work_dirs/{subject}/vico_weights.safetensors' --clip /models/clip-vit-base-patch32 \
        --dino /models/dino-vits16 --num-images 4
"""
import argparse
import json
import os

import torch
from mmengine import Config, DictAction
from PIL import Image
from tqdm.auto import tqdm

from mmagic_vico.evaluation import ImageEmbedder, TextImageScorer, mean_pairwise_cosine, read_dreambench
from mmagic_vico.models.tiny_sd import build_tiny_clip, build_tiny_dino, ensure_tiny_sd
from mmagic_vico.registry import MODELS
from mmagic_vico.utils import register_all_modules
from mmagic_vico.utils.cli import add_sampling_args
from mmagic_vico.utils.config import apply_cfg_options
from mmagic_vico.utils.image import list_images

TINY_CLIP, TINY_DINO = os.path.join('data', 'tiny_clip'), os.path.join('data', 'tiny_dino')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('--dreambench', required=True, help='the DreamBench folder (prompts_and_classes.txt, <subject>/)')
    p.add_argument('--subjects', nargs='+', required=True)
    p.add_argument('--weights', help="trained weights; '{subject}' is replaced by each subject's name")
    p.add_argument('--clip', default=TINY_CLIP, help='local CLIP (ViT-B/32 in the protocol); default: tiny')
    p.add_argument('--dino', default=TINY_DINO, help='local DINO ViT-S/16; default: tiny')
    add_sampling_args(p, num_images=4)
    p.add_argument('--out-dir', default=os.path.join('work_dirs', 'evaluation'))
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def generate(model, args, subject, prompts, reference, folder) -> list:
    """Generate (or reuse) prompt-major images ``{p:02d}_{k:02d}.png``; seeds fixed per image."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for p, prompt in enumerate(tqdm(prompts, desc=f'{subject}: generating')):
        for k in range(args.num_images):
            path = os.path.join(folder, f'{p:02d}_{k:02d}.png')
            if not os.path.exists(path):
                extra = dict(image_reference=reference) if model.needs_reference else {}
                image = model.infer(prompt, num_inference_steps=args.steps, guidance_scale=args.guidance,
                                    height=args.height, width=args.width, seed=args.seed + p * 1000 + k,
                                    show_progress=False, **extra)['samples'][0]
                image.save(path + '.tmp.png')
                os.replace(path + '.tmp.png', path)
            paths.append(path)
    return paths


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    cfg = apply_cfg_options(Config.fromfile(args.config), args.cfg_options)
    if args.clip == TINY_CLIP and not os.path.isdir(TINY_CLIP):
        ensure_tiny_sd(os.path.join('data', 'tiny_sd15'))
        build_tiny_clip(TINY_CLIP, os.path.join('data', 'tiny_sd15'))
    if args.dino == TINY_DINO and not os.path.isdir(TINY_DINO):
        build_tiny_dino(TINY_DINO)
    protocol = read_dreambench(args.dreambench)
    clip_t, dino = TextImageScorer(args.clip), ImageEmbedder(args.dino, 'dino')
    clip_i = clip_t.images  # one CLIP for both scores
    token = cfg.model.get('placeholder') or 'sks'
    results = {}
    for subject in args.subjects:
        real = list_images(os.path.join(args.dreambench, subject))
        model = MODELS.build(cfg.model).eval()
        if args.weights:
            model.load_weights(args.weights.format(subject=subject))
        prompts = protocol.prompts(subject, token)
        paths = generate(model, args, subject, prompts, real[0], os.path.join(args.out_dir, subject))
        generated = [Image.open(p) for p in paths]
        texts = [t for t in protocol.text_prompts(subject) for _ in range(args.num_images)]
        real_images = [Image.open(p) for p in real]
        generated_clip = clip_i(generated)  # encoded once, for CLIP-T and CLIP-I
        results[subject] = {
            'CLIP-T': clip_t.score(generated_clip, texts).mean().item(),
            'CLIP-I': mean_pairwise_cosine(generated_clip, clip_i(real_images)),
            'DINO': mean_pairwise_cosine(dino(generated), dino(real_images)),
            'images': len(paths)}
        del model
    overall = {k: sum(r[k] for r in results.values()) / len(results) for k in ('CLIP-T', 'CLIP-I', 'DINO')}
    report = dict(config=args.config, subjects=results, overall=overall)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, 'scores.json'), 'w') as f:
        json.dump(report, f, indent=2)
    lines = ['| subject | CLIP-T | CLIP-I | DINO |', '|---|---|---|---|']
    lines += [f'| {s} | {r["CLIP-T"]:.3f} | {r["CLIP-I"]:.3f} | {r["DINO"]:.3f} |' for s, r in results.items()]
    lines.append(f'| **overall** | {overall["CLIP-T"]:.3f} | {overall["CLIP-I"]:.3f} | {overall["DINO"]:.3f} |')
    table = '\n'.join(lines)
    with open(os.path.join(args.out_dir, 'scores.md'), 'w') as f:
        f.write(table + '\n')
    print(table)
    return report


if __name__ == '__main__':
    with torch.no_grad():
        main()
