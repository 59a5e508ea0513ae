"""The DreamBench table in one command: every method trained on every subject with its own config (the
subject's photos, and its class noun from prompts_and_classes.txt as the placeholder's initialize_token
or DreamBooth's class), its prompts (25 in DreamBench) x N images generated in batches, scored (CLIP-T, CLIP-I, DINO),
one table (method rows) in WORK_DIR/dreambench.md and per subject in WORK_DIR/subjects/.

Every (method, subject) job is skipped when done and resumed when not (records of what made its weights
and scores in WORK_DIR/<method>/<subject>/), so an interrupted sweep continues where it stopped. A job
that other settings made stops the sweep before any work (--overwrite: it is removed and made again);
a job folder in use by another live sweep too.

    # the tiny default (CPU, minutes): configs/dreambench/dreambench_tiny.py
    python tools/dreambench.py --dreambench ../shared/data/dreambench --subjects dog7 teapot
    # the protocol on Stable Diffusion 1.5, 8 GPUs of one node (or NNODES / NODE_RANK / MASTER_ADDR)
    bash tools/dist_dreambench.sh 8 configs/dreambench/dreambench.py --dreambench /data/dreambench \\
        --subjects all --clip /models/clip-vit-base-patch32 --dino /models/dino-vits16 \\
        --cfg-options pretrained_model=/data/sd15
    # a Slurm job array of 16 tasks, then the table: tools/slurm_dreambench.sh
"""
import argparse
import os

from mmagic_vico.engine.preflight import config_key
from mmagic_vico.evaluation.cli import add_protocol_args, build_evaluator, sampling
from mmagic_vico.sweep import DreamBenchSweep, join, make_jobs
from mmagic_vico.utils import checks, register_all_modules
from mmagic_vico.utils.cli import ConfigOptions, add_debug_flag, finite_number
from mmagic_vico.utils.config import load_config
from mmagic_vico.utils.errors import InvalidValueError, run_tool

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_SWEEP = os.path.join(REPO, 'configs', 'dreambench', 'dreambench_tiny.py')
#: the sweep config's `evaluation` keys -> the flags that override them
FLAGS = dict(num_images='num_images', num_inference_steps='steps', guidance_scale='guidance', height='height',
             width='width', seed='seed', batch_size='batch_size')


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', nargs='?', default=TINY_SWEEP,
                   help='the sweep config (default: configs/dreambench/dreambench_tiny.py, the tiny default)')
    p.add_argument('--methods', nargs='+', help="methods of the config's `methods` (default: all of them)")
    add_protocol_args(p)
    p.add_argument('--work-dir', help="default: the config's work_dir (work_dirs/<sweep config name> if it has none)")
    p.add_argument('--overwrite', action='store_true',
                   help='remove and make again the jobs in the work dir that other settings made (else they stop '
                        'the sweep before any work)')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                   help='none: one process, or a task of a Slurm job array; pytorch: torchrun; slurm: srun')
    p.add_argument('--timeout-hours', type=finite_number(1e-3, hint='72 is the default'), default=72.0,
                   help='how long a rank waits for the others')
    p.add_argument('--cfg-options', nargs='+', action=ConfigOptions,
                   help='override keys of the sweep config, e.g. pretrained_model=/data/sd15')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_debug_flag(p)
    return p


def parse_args(argv=None):
    """The flags; the sampling ones default to the sweep config's ``evaluation``."""
    parser = build_parser()
    first, _ = parser.parse_known_args(argv)
    if not os.path.isfile(first.config):
        parser.error(f'sweep config {first.config!r} does not exist; give configs/dreambench/dreambench.py (SD 1.5) '
                     'or configs/dreambench/dreambench_tiny.py (the tiny default).')
    cfg = load_config(first.config, first.cfg_options)  # a typo in an option, a NaN: named here
    parser.set_defaults(**{FLAGS[k]: v for k, v in cfg.get('evaluation', {}).items() if k in FLAGS})
    args = parser.parse_args(argv)
    args.sweep_cfg = cfg
    with config_key('evaluation'):  # the config's values did not pass the flags' types
        checks.sampling(**{key: getattr(args, flag) for key, flag in FLAGS.items()})
    unknown = sorted(set(args.methods or []) - set(cfg.methods))
    if unknown:
        parser.error(f'--methods {unknown} are not in {args.config}; its methods: {sorted(cfg.methods)}.')
    return args


def chosen_subjects(args, protocol) -> list:
    """``--subjects all`` or names, each known to the protocol and with its photos in --dreambench."""
    subjects = list(protocol.classes) if args.subjects == ['all'] else args.subjects
    unknown = [s for s in subjects if s not in protocol.classes]
    if unknown:
        raise InvalidValueError(f'--subjects {unknown} are not in {args.dreambench}/prompts_and_classes.txt; give '
                                f'subjects it lists ({", ".join(protocol.classes)}) or all.')
    missing = [s for s in subjects if not os.path.isdir(os.path.join(args.dreambench, s))]
    if missing:
        present = [s for s in protocol.classes if os.path.isdir(os.path.join(args.dreambench, s))]
        raise InvalidValueError(f'--subjects: {args.dreambench} has no photos of {missing}; download the whole '
                                f'DreamBench (google/dreambooth, dataset/) there, or name subjects it has: '
                                f'{" ".join(present)}.')
    return subjects


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    cfg = args.sweep_cfg
    work_dir = args.work_dir or cfg.get('work_dir') or os.path.join(
        'work_dirs', os.path.splitext(os.path.basename(args.config))[0])
    checks.output_dir(work_dir, '--work-dir')  # a file, or read-only: before any work
    ranks = join(args.launcher, args.timeout_hours)
    try:
        if ranks.grouped:  # each rank its own GPU
            args.device = ranks.device
        evaluator = build_evaluator(args)
        subjects = chosen_subjects(args, evaluator.protocol)
        jobs = make_jobs(cfg, args.methods or list(cfg.methods), subjects, evaluator.protocol, args.dreambench,
                         work_dir, REPO, args.seed)
        settings = sampling(args)
        batch_size = settings.pop('batch_size')
        sweep = DreamBenchSweep(jobs, evaluator, dict(clip=args.clip, dino=args.dino), settings, batch_size,
                                work_dir, os.path.join(REPO, 'tools', 'train.py'), REPO, ranks, args.overwrite)
        return sweep.run()
    finally:
        ranks.close()


if __name__ == '__main__':
    run_tool(main)
