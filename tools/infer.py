"""Sample a trained concept: config + trained weights + prompts (+ a reference image for ViCo) -> PNGs and a grid.

    python tools/infer.py configs/vico/vico_tiny.py --weights work_dirs/vico_tiny/tiny_toy/vico_weights.safetensors \
        --prompt "a photo of S*" --prompt "a S* on the beach" --num-images 2 --seed 0
"""
import argparse
import json
import os

import torch

from mmagic_vico.datasets.learnable_property import EXAMPLE_PROMPTS, check_learnable_property
from mmagic_vico.models.aesthetic_gradients import check_aesthetic_embedding
from mmagic_vico.registry import MODELS
from mmagic_vico.utils import checks, register_all_modules
from mmagic_vico.utils.atomic import atomic_save_image
from mmagic_vico.utils.cli import (ConfigOptions, add_debug_flag, add_sampling_args, device, finite_number,
                                  non_negative_int)
from mmagic_vico.utils.config import load_config, work_dir_of
from mmagic_vico.utils.errors import InvalidValueError, MissingFileError, run_tool
from mmagic_vico.utils.image import list_images, make_grid, open_image
from mmagic_vico.utils.logging import add_verbose_flag, setup_logging


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Sample images of a trained concept (ViCo, Textual Inversion, ...).')
    p.add_argument('config', help='model config, e.g. configs/vico/vico.py')
    p.add_argument('--weights', help='trained .safetensors; default: <work dir>/<weights_name>.safetensors '
                   '(work_dirs/<config>/<concept>/vico_weights.safetensors for ViCo) if it exists')
    p.add_argument('--prompt', action='append', help='a prompt with the placeholder; repeat for several '
                   '(default: "a photo of S*"; "a painting in the style of S*" when the config learns a style)')
    p.add_argument('--reference', help='reference image (ViCo); default: the first concept (or style) image')
    p.add_argument('--negative-prompt', default=None)
    p.add_argument('--out-dir', help='default: <work dir>/samples')
    add_sampling_args(p)
    p.add_argument('--eta', type=finite_number(0, 1, '0 (deterministic DDIM) is the default'), default=0.0)
    p.add_argument('--image-attention-scale', type=finite_number(0, hint='1 is the default; 0 turns it off'),
                   default=1.0)
    p.add_argument('--aesthetic-embedding', help='Aesthetic Gradients: file of tools/make_aesthetic_embedding.py')
    p.add_argument('--aesthetic-steps', type=non_negative_int, help='Aesthetic Gradients steps (0: off; needed with '
                   '--aesthetic-embedding, e.g. 10)')
    p.add_argument('--aesthetic-lr', type=finite_number(0, hint='1e-4 is the default'))
    p.add_argument('--aesthetic-clip', help='CLIP folder of the embedding (default: the one it was made with)')
    p.add_argument('--device', type=device, default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--cfg-options', nargs='+', action=ConfigOptions, help='override config keys, e.g. '
                   'model.pretrained_model=/path/to/sd15')
    add_verbose_flag(p)
    add_debug_flag(p)
    return p.parse_args(argv)


def text_encoder_width(pretrained_model) -> int | None:
    """The hidden size of a local Stable Diffusion folder's text encoder (None if not at hand yet)."""
    path = os.path.join(str(pretrained_model), 'text_encoder', 'config.json')
    if not os.path.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f).get('hidden_size')


def aesthetic_settings(args, model_cfg) -> dict:
    """The Aesthetic Gradients flags (the config's defaults for its own model), checked together."""
    own = model_cfg if model_cfg.get('type') == 'AestheticGradients' else {}
    embedding = args.aesthetic_embedding or own.get('aesthetic_embedding')
    steps = args.aesthetic_steps if args.aesthetic_steps is not None else own.get('aesthetic_steps') or 0
    if embedding and not steps:
        raise InvalidValueError(f'--aesthetic-embedding {embedding!r} does nothing without --aesthetic-steps: give '
                                'the number of steps that steer towards it, e.g. --aesthetic-steps 10.')
    if steps and not embedding:
        raise InvalidValueError(f'--aesthetic-steps {steps} needs --aesthetic-embedding FILE (made by '
                                'tools/make_aesthetic_embedding.py).')
    clip = args.aesthetic_clip or own.get('aesthetic_clip')
    if embedding:
        check_aesthetic_embedding(embedding, clip, text_encoder_width(model_cfg.get('pretrained_model')))
    lr = args.aesthetic_lr if args.aesthetic_lr is not None else own.get('aesthetic_lr', 1e-4)
    return dict(aesthetic_embedding=embedding, aesthetic_steps=steps, aesthetic_lr=lr, aesthetic_clip=clip)


def main(argv=None):
    args = parse_args(argv)
    setup_logging(args.verbose)
    register_all_modules()
    cfg = load_config(args.config, args.cfg_options)
    work_dir = work_dir_of(cfg, args.config)
    for flag, path in (('--weights', args.weights), ('--reference', args.reference)):  # before building anything
        if path and not os.path.isfile(path):
            raise MissingFileError(f'{flag} {path!r} does not exist' + (' (it is a folder)' if os.path.isdir(path)
                                                                        else '') + '; ' + (
                'give the .safetensors file written by training (e.g. work_dirs/vico/dog7/vico_weights.safetensors), '
                f'or leave --weights out to use {work_dir}/<method>_weights.safetensors.' if flag == '--weights' else
                'give a photo of the concept, or leave --reference out to use the first concept image.'))
    learnable_property = check_learnable_property(cfg.get('learnable_property', 'object'))
    out_dir = checks.output_dir(args.out_dir or os.path.join(work_dir, 'samples'), '--out-dir')
    aesthetic = aesthetic_settings(args, cfg.model)
    condition = {}
    if MODELS.get(cfg.model.type).needs_reference:
        reference = args.reference or list_images(os.path.join(cfg.get('data_root', 'data/vico'),
                                                               cfg.get('concept_dir', '')))[0]
        open_image(reference)  # readable, before the model loads
        condition = dict(image_reference=reference, image_cross_attention_scale=args.image_attention_scale)
    placeholder = cfg.model.get('placeholder') or cfg.get('identifier') or ''
    prompts = args.prompt or [EXAMPLE_PROMPTS[learnable_property].format(placeholder).strip()]
    model = MODELS.build(cfg.model).to(args.device).eval()
    weights = args.weights or os.path.join(work_dir, f'{model.weights_name}.safetensors')
    if os.path.exists(weights):
        model.load_weights(weights)
        print(f'loaded trained weights {weights}')
    elif model.trainable_markers:
        print(f'no trained weights at {weights}: sampling the untrained concept (train it first with '
              f'python tools/train.py {args.config})')
    out = model.infer(prompts, height=args.height, width=args.width, num_inference_steps=args.steps,
                      guidance_scale=args.guidance, negative_prompt=args.negative_prompt,
                      num_images_per_prompt=args.num_images, eta=args.eta, seed=args.seed, **aesthetic,
                      **condition)['samples']
    for i, image in enumerate(out):
        atomic_save_image(os.path.join(out_dir, f'{i // args.num_images:02d}_{i % args.num_images:02d}.png'), image)
    grid = atomic_save_image(os.path.join(out_dir, 'grid.png'), make_grid(out, args.num_images, captions=prompts))
    print(f'wrote {len(out)} samples of {prompts} and {grid} (a row per prompt, written under it)')
    return out


if __name__ == '__main__':
    run_tool(main)
