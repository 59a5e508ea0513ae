"""Train a toy-world scorer and measure its gate on renders it never saw.

    python tools/train_toy_scorer.py                  # base scorer: background, class, colour
                                                      #   -> data/toyworld_scorer.safetensors (gate >= 0.98)
    python tools/train_toy_scorer.py --kind concepts  # concept identity: which of the toy DreamBench's
                                                      #   concepts, or 'other' -> data/toybench_scorer.safetensors
                                                      #   (gate >= 0.95)
    python tools/train_toy_scorer.py --gate-only      # re-measure a trained scorer

Training and gate renders draw their seeds from separate streams (mmagic_vico/toyworld/world.py), so
the gate measures pictures the scorer never saw.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
DATA = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data'))
KINDS = {'base': ('toyworld_scorer.safetensors', 0.98), 'concepts': ('toybench_scorer.safetensors', 0.95)}

from mmagic_vico.utils import checks  # noqa: E402
from mmagic_vico.utils.cli import add_debug_flag, positive_int, seed  # noqa: E402
from mmagic_vico.utils.errors import MissingFileError, run_tool  # noqa: E402


def main(argv=None):
    from mmagic_vico.toyworld.scorer import ToyScorer, train_scorer
    from mmagic_vico.toyworld.scorer_sets import base_set, concept_set
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--kind', choices=list(KINDS), default='base')
    p.add_argument('--out', help='weights file (default data/<kind file>)')
    p.add_argument('--per-triple', type=positive_int, default=80,
                   help='training renders per (class, colour, background)')
    p.add_argument('--steps', type=positive_int, default=2000)
    p.add_argument('--seed', type=seed, default=0)
    p.add_argument('--threads', type=positive_int, default=2)
    p.add_argument('--gate-only', action='store_true')
    add_debug_flag(p)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    filename, threshold = KINDS[args.kind]
    out = args.out or os.path.join(DATA, filename)
    if args.gate_only and not os.path.isfile(out):
        raise MissingFileError(f'--gate-only: no scorer at {out!r} to measure; train one first (leave --gate-only '
                               'out), or give its file with --out.')
    checks.output_file(out, '--out')  # before the training: a folder or a read-only place fails here
    make = base_set if args.kind == 'base' else concept_set
    log = lambda m: print(f'{time.strftime("%H:%M:%S")} {m}', flush=True)  # noqa: E731

    if not args.gate_only:
        images, labels, heads = make(args.per_triple, args.seed, stream=2)
        log(f'{len(images)} training renders')
        model = train_scorer(images, labels, heads, steps=args.steps, seed=args.seed, log=log)
        model.save(out)
        log(f'saved {out}')
    model = ToyScorer.from_file(out)
    images, labels, heads = make(10, args.seed, stream=3)
    predicted = model.predict(images)
    acc = {k: float((torch.tensor([heads[k].index(x) for x in predicted[k]]) == torch.from_numpy(labels[:, j])).float()
                    .mean()) for j, k in enumerate(heads)}
    log(f'gate ({len(images)} held-out renders): ' + ', '.join(f'{k} {v:.4f}' for k, v in acc.items())
        + f' (threshold {threshold})')
    return 0 if min(acc.values()) >= threshold else 1


if __name__ == '__main__':
    run_tool(main)
