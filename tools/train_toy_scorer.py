"""Train the toy-world scorer (background, class, colour from pixels) and measure its gate.

    python tools/train_toy_scorer.py                 # writes data/toyworld_scorer.safetensors
    python tools/train_toy_scorer.py --gate-only     # re-measure the shipped scorer

Training renders come from every (class, colour, background) triple with render seeds of their own;
the gate is accuracy per label on other renders (docs/toyworld.md), which must be >= 0.98.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))


def main(argv=None):
    from mmagic_vico.toyworld import base_model as bm
    from mmagic_vico.toyworld.scorer import BASE_HEADS, ToyScorer, accuracy, default_scorer_path, train_scorer
    from mmagic_vico.toyworld.world import evaluation_scenes
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default=os.path.normpath(default_scorer_path()))
    p.add_argument('--per-triple', type=int, default=80, help='training renders per triple (288 triples)')
    p.add_argument('--steps', type=int, default=2000)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--gate-only', action='store_true')
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    log = lambda m: print(f'{time.strftime("%H:%M:%S")} {m}', flush=True)  # noqa: E731

    if not args.gate_only:
        scenes = evaluation_scenes(None, args.per_triple, args.seed, stream=2)
        images, _ = bm.render_many(scenes, log=log)
        model = train_scorer(images, bm.scene_labels(scenes), BASE_HEADS, steps=args.steps, seed=args.seed, log=log)
        model.save(args.out)
        log(f'saved {args.out}')
    model = ToyScorer.from_file(args.out)
    gate = evaluation_scenes(None, 10, args.seed, stream=3)
    images, _ = bm.render_many(gate)
    expected = {'background': [s.background for s in gate], 'class': [s.cls for s in gate],
                'colour': [s.colour for s in gate]}
    acc = accuracy(model.predict(images), expected)
    log('gate (held-out renders, %d): ' % len(gate) + ', '.join(f'{k} {v:.4f}' for k, v in acc.items()))
    return 0 if min(acc.values()) >= 0.98 else 1


if __name__ == '__main__':
    sys.exit(main())
