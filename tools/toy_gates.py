"""Measure the toy-world gates (docs/toyworld.md) of a base-model folder with the scorer.

    python tools/toy_gates.py data/toyworld_sd15              # base gates (seen, held-out)
    python tools/toy_gates.py data/toyworld_sd15 --vae        # the autoencoder gate
    python tools/toy_gates.py data/toyworld_sd15 --baseline   # the same scoring of empty-prompt samples

Samples come from diffusers' stock StableDiffusionPipeline with SD's DDIM sampler. Exit code 0 when the
measured gates hold.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from mmagic_vico.utils import checks  # noqa: E402
from mmagic_vico.utils.cli import add_debug_flag, guidance_scale, positive_int, seed  # noqa: E402
from mmagic_vico.utils.errors import MissingFileError, run_tool  # noqa: E402


def check_folder(folder: str, vae_only: bool) -> None:
    """A diffusers folder (its VAE alone for --vae), before anything loads."""
    needed = os.path.join(folder, 'vae', 'config.json') if vae_only else os.path.join(folder, 'model_index.json')
    if not os.path.isfile(needed):
        raise MissingFileError(f'FOLDER {folder!r} has no {os.path.relpath(needed, folder)}: give a base model in the '
                               'diffusers layout (data/toyworld_sd15, or the pipeline/ folder of a train_toy_base.py '
                               'run).')


def main(argv=None):
    from mmagic_vico.toyworld import gates
    from mmagic_vico.toyworld.scorer import load_default_scorer
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('folder', nargs='?', default=gates.default_base_path(), help='a diffusers folder')
    p.add_argument('--vae', action='store_true', help='measure the autoencoder gate instead')
    p.add_argument('--baseline', action='store_true', help='score empty-prompt samples against the prompts')
    p.add_argument('--samples', type=positive_int, default=108, help='samples for seen and for held-out triples each')
    p.add_argument('--guidance', type=guidance_scale, default=5.0)
    p.add_argument('--steps', type=positive_int, default=25)
    p.add_argument('--seed', type=seed, default=0)
    p.add_argument('--scorer', default=None, help='scorer weights (default data/toyworld_scorer.safetensors)')
    p.add_argument('--threads', type=positive_int, default=2)
    p.add_argument('--json', help='also write the figures here')
    add_debug_flag(p)
    args = p.parse_args(argv)
    check_folder(args.folder, args.vae)
    if args.json:
        checks.output_file(args.json, '--json')
    torch.set_num_threads(args.threads)
    scorer = load_default_scorer(args.scorer)
    if args.vae:
        from diffusers import AutoencoderKL
        vae = AutoencoderKL.from_pretrained(os.path.join(args.folder, 'vae')).eval()
        result = {'vae': gates.vae_gate(vae, scorer, seed=args.seed)}
        ok = min(result['vae'].values()) >= gates.VAE_GATE
        print('vae reconstructions: ' + ', '.join(f'{k} {v:.3f}' for k, v in result['vae'].items()))
    else:
        pipe = gates.load_pipeline(args.folder)
        result = gates.base_gates(pipe, scorer, n_seen=args.samples, n_held=args.samples, guidance=args.guidance,
                                  steps=args.steps, seed=args.seed, unconditional=args.baseline)
        ok, fails = gates.passes(result)
        print(gates.format_result(result))
        print('gates hold' if ok else 'gates not reached: ' + '; '.join(fails))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(result, args=vars(args)), f, indent=2)
    return 0 if ok else 1


if __name__ == '__main__':
    run_tool(main)
