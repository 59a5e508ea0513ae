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


def main(argv=None):
    from mmagic_vico.toyworld import gates
    from mmagic_vico.toyworld.scorer import load_default_scorer
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('folder', nargs='?', default=gates.default_base_path(), help='a diffusers folder')
    p.add_argument('--vae', action='store_true', help='measure the autoencoder gate instead')
    p.add_argument('--baseline', action='store_true', help='score empty-prompt samples against the prompts')
    p.add_argument('--samples', type=int, default=108, help='samples for seen and for held-out triples each')
    p.add_argument('--guidance', type=float, default=5.0)
    p.add_argument('--steps', type=int, default=25)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--scorer', default=None, help='scorer weights (default data/toyworld_scorer.safetensors)')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--json', help='also write the figures here')
    args = p.parse_args(argv)
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
    sys.exit(main())
