"""DreamBench evaluation of a trained concept: CLIP-T, CLIP-I and DINO.

For each subject: the 25 DreamBench prompts (object or live list) x N images with fixed seeds are
generated with the method's config and weights (images already there are reused, so an interrupted
run resumes), then scored against the subject's real photos. Writes scores.json and scores.md.

    python tools/evaluate.py configs/vico/vico.py --dreambench /data/dreambench --subjects dog7 teapot \
        --weights 'work_dirs/vico/{subject}/vico_weights.safetensors' --clip /models/clip-vit-base-patch32 \
        --dino /models/dino-vits16 --num-images 4
"""
import argparse
import os


from mmagic_vico.evaluation.cli import add_protocol_args, build_evaluator, sampling, write_report
from mmagic_vico.evaluation.evaluator import scores_table
from mmagic_vico.utils import checks
from mmagic_vico.utils.cli import ConfigOptions, add_debug_flag
from mmagic_vico.utils.config import load_config
from mmagic_vico.utils.errors import run_tool
from mmagic_vico.utils.logging import add_verbose_flag, setup_logging


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('--weights', help="trained weights; '{subject}' is replaced by each subject's name")
    add_protocol_args(p)
    p.add_argument('--out-dir', help='default: work_dirs/evaluation/<config name>')
    p.add_argument('--cfg-options', nargs='+', action=ConfigOptions)
    add_verbose_flag(p)
    add_debug_flag(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    setup_logging(args.verbose)
    name = os.path.splitext(os.path.basename(args.config))[0]
    args.out_dir = args.out_dir or os.path.join('work_dirs', 'evaluation', name)  # one folder per config
    checks.output_dir(args.out_dir, '--out-dir')
    cfg = load_config(args.config, args.cfg_options)  # a typo fails here, before the scorers load
    evaluator = build_evaluator(args)
    report = evaluator.evaluate(cfg.model, args.subjects, args.out_dir, args.weights, **sampling(args))
    report = dict(config=args.config, **report)
    rows = dict(report['subjects'], **{'**overall**': report['overall']})
    write_report(report, args.out_dir, 'scores', scores_table(rows))
    return report


if __name__ == '__main__':
    run_tool(main)
