"""Several methods on the same DreamBench subjects, one table: CLIP-T, CLIP-I and DINO of each.

Each --method is a name, a config and (optionally) its trained weights, where '{subject}' stands for
each subject's name. Same prompts, seeds, sampler and scorers (loaded once) for every method; images
go to OUT/<method>/<subject>/ and are reused by a rerun.

    python tools/compare.py --dreambench /data/dreambench --subjects dog7 teapot \
        --method ViCo configs/vico/vico.py 'work_dirs/vico/{subject}/vico_weights.safetensors' \
        --method TI configs/textual_inversion/textual_inversion.py \
            'work_dirs/textual_inversion/{subject}/textual_inversion_weights.safetensors' \
        --method SD configs/aesthetic_gradients/aesthetic_gradients.py \
        --clip /models/clip-vit-base-patch32 --dino /models/dino-vits16 --cfg-options model.pretrained_model=/data/sd15
"""
import argparse
import os
import re
import sys


from mmagic_vico.evaluation.cli import add_protocol_args, build_evaluator, sampling, write_report
from mmagic_vico.evaluation.evaluator import scores_table
from mmagic_vico.utils import checks
from mmagic_vico.utils.cli import ConfigOptions, add_debug_flag
from mmagic_vico.utils.config import load_config
from mmagic_vico.utils.errors import run_tool
from mmagic_vico.utils.logging import add_verbose_flag, setup_logging


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--method', nargs='+', action='append', required=True, metavar='NAME CONFIG [WEIGHTS]',
                   help='a method to compare; repeat for each')
    add_protocol_args(p)
    p.add_argument('--out-dir', default=os.path.join('work_dirs', 'compare'))
    p.add_argument('--cfg-options', nargs='+', action=ConfigOptions,
                   help='applied to every method\'s config, e.g. model.pretrained_model=/data/sd15')
    add_verbose_flag(p)
    add_debug_flag(p)
    args = p.parse_args(argv)
    for spec in args.method:
        if len(spec) not in (2, 3):
            p.error(f'--method {" ".join(spec)}: give NAME CONFIG [WEIGHTS], e.g. --method ViCo '
                    "configs/vico/vico.py 'work_dirs/vico/{subject}/vico_weights.safetensors'")
        if not os.path.isfile(spec[1]):
            p.error(f'--method {spec[0]}: config {spec[1]!r} does not exist.')
    names = [spec[0] for spec in args.method]
    if len(set(names)) < len(names):
        p.error(f'method names {names} repeat; give each --method its own NAME.')
    return args


def main(argv=None):
    args = parse_args(argv)
    setup_logging(args.verbose)
    checks.output_dir(args.out_dir, '--out-dir')
    configs = [load_config(config, args.cfg_options) for _, config, *_ in args.method]  # typos fail before any work
    evaluator = build_evaluator(args)
    folders = [os.path.join(args.out_dir, re.sub(r'[^\w.-]+', '_', name)) for name, *_ in args.method]
    for cfg, folder, (_, _, *weights) in zip(configs, folders, args.method):  # every method's weights and images
        evaluator.check(cfg.model, args.subjects, folder, weights[0] if weights else None, **sampling(args))
    reports = {}
    for cfg, folder, (name, config, *weights) in zip(configs, folders, args.method):
        print(f'== {name}: {config}', file=sys.stderr)
        report = evaluator.evaluate(cfg.model, args.subjects, folder,
                                    weights[0] if weights else None, **sampling(args))
        reports[name] = dict(config=config, weights=weights[0] if weights else None, **report)
    table = scores_table({name: r['overall'] for name, r in reports.items()}, first='method')
    table += f'\n\nMean over {len(args.subjects)} subject(s) ({", ".join(args.subjects)}), {args.num_images} ' \
             f'image(s) x {len(evaluator.protocol.object_prompts)} prompts each; per subject in compare.json.'
    write_report(dict(subjects=args.subjects, methods=reports), args.out_dir, 'compare', table)
    return reports


if __name__ == '__main__':
    run_tool(main)
