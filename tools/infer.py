"""Sample a trained concept: config + trained weights + prompts (+ a reference image for ViCo) -> PNGs and a grid.

    python tools/infer.py configs/vico/vico_tiny.py --weights work_dirs/vico_tiny/vico_weights.safetensors \
        --prompt "a photo of S*" --prompt "a S* on the beach" --num-images 2 --seed 0
"""
import argparse
import os

import torch
from mmengine import DictAction

from mmagic_vico.datasets.learnable_property import EXAMPLE_PROMPTS, check_learnable_property
from mmagic_vico.registry import MODELS
from mmagic_vico.utils import register_all_modules
from mmagic_vico.utils.cli import add_sampling_args
from mmagic_vico.utils.config import load_config, work_dir_of
from mmagic_vico.utils.image import list_images, make_grid
from mmagic_vico.utils.logging import add_verbose_flag, setup_logging


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Sample images of a trained concept (ViCo, Textual Inversion, ...).')
    p.add_argument('config', help='model config, e.g. configs/vico/vico.py')
    p.add_argument('--weights', help='trained .safetensors; default: work_dirs/<config>/<weights_name>.safetensors '
                   '(vico_weights for ViCo) if it exists')
    p.add_argument('--prompt', action='append', help='a prompt with the placeholder; repeat for several '
                   '(default: "a photo of S*"; "a painting in the style of S*" when the config learns a style)')
    p.add_argument('--reference', help='reference image (ViCo); default: the first concept (or style) image')
    p.add_argument('--negative-prompt', default=None)
    p.add_argument('--out-dir', help='default: work_dirs/<config>/samples')
    add_sampling_args(p)
    p.add_argument('--eta', type=float, default=0.0)
    p.add_argument('--image-attention-scale', type=float, default=1.0)
    p.add_argument('--aesthetic-embedding', help='Aesthetic Gradients: file of tools/make_aesthetic_embedding.py')
    p.add_argument('--aesthetic-steps', type=int, default=0, help='Aesthetic Gradients steps (0: off)')
    p.add_argument('--aesthetic-lr', type=float, default=1e-4)
    p.add_argument('--aesthetic-clip', help='CLIP folder of the embedding (default: the one it was made with)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys, e.g. '
                   'model.pretrained_model=/path/to/sd15')
    add_verbose_flag(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    setup_logging(args.verbose)
    register_all_modules()
    cfg = load_config(args.config, args.cfg_options)
    work_dir = work_dir_of(cfg, args.config)
    for flag, path in (('--weights', args.weights), ('--reference', args.reference)):  # before building anything
        if path and not os.path.isfile(path):
            raise FileNotFoundError(f'{flag} {path!r} does not exist; ' + (
                'give the .safetensors file written by training (e.g. work_dirs/vico/vico_weights.safetensors), '
                f'or leave --weights out to use {work_dir}/<method>_weights.safetensors.' if flag == '--weights' else
                'give a photo of the concept, or leave --reference out to use the first concept image.'))
    learnable_property = check_learnable_property(cfg.get('learnable_property', 'object'))
    prompts = args.prompt or [EXAMPLE_PROMPTS[learnable_property].format(cfg.model.placeholder)]
    model = MODELS.build(cfg.model).to(args.device).eval()
    weights = args.weights or os.path.join(work_dir, f'{model.weights_name}.safetensors')
    condition = {}
    if model.needs_reference:
        reference = args.reference or list_images(os.path.join(cfg.get('data_root', 'data/vico'),
                                                               cfg.get('concept_dir', '')))[0]
        condition = dict(image_reference=reference, image_cross_attention_scale=args.image_attention_scale)
    if os.path.exists(weights):
        model.load_weights(weights)
        print(f'loaded trained weights {weights}')
    elif model.trainable_markers:
        print(f'no trained weights at {weights}: sampling the untrained concept (train it first with '
              f'python tools/train.py {args.config})')
    out = model.infer(prompts, height=args.height, width=args.width, num_inference_steps=args.steps,
                      guidance_scale=args.guidance, negative_prompt=args.negative_prompt,
                      num_images_per_prompt=args.num_images, eta=args.eta, seed=args.seed,
                      aesthetic_embedding=args.aesthetic_embedding, aesthetic_steps=args.aesthetic_steps,
                      aesthetic_lr=args.aesthetic_lr, aesthetic_clip=args.aesthetic_clip, **condition)['samples']
    out_dir = args.out_dir or os.path.join(work_dir, 'samples')
    os.makedirs(out_dir, exist_ok=True)
    for i, image in enumerate(out):
        image.save(os.path.join(out_dir, f'{i // args.num_images:02d}_{i % args.num_images:02d}.png'))
    grid = os.path.join(out_dir, 'grid.png')
    make_grid(out, args.num_images, captions=prompts).save(grid)
    print(f'wrote {len(out)} samples of {prompts} and {grid} (a row per prompt, written under it)')
    return out


if __name__ == '__main__':
    main()
