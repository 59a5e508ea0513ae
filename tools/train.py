"""Train a concept with mmengine's Runner.

    python tools/train.py configs/vico/vico.py [--work-dir DIR] [--resume [CKPT]] [--overwrite] [--amp]
        [--cfg-options concept_dir=my_dog initialize_token=dog model.pretrained_model=/data/sd15]
    bash tools/dist_train.sh configs/vico/vico.py 4      # 4 processes (GPUs; gloo on a CPU)

Outputs go to work_dirs/<config name>/<concept> (or --work-dir). Before any work: the config, the
photos, the hooks' settings and the work dir are checked; a work dir holding another run's exports,
or used by a live run, stops the run with what to do.
"""
import argparse
import contextlib
import importlib.util
import os
import warnings

import torch

from mmagic_vico.engine import QuietRunner, amp_optim_wrapper
from mmagic_vico.engine.preflight import check_training_inputs
from mmagic_vico.engine.run_folder import check_run_folder, checkpoint_problem, resume_point, run_record
from mmagic_vico.utils import checks, register_all_modules
from mmagic_vico.utils.cli import ConfigOptions, add_debug_flag
from mmagic_vico.utils.config import check_train_cfg, load_config, work_dir_of
from mmagic_vico.utils.errors import InvalidValueError, MissingFileError, run_tool
from mmagic_vico.utils.lock import folder_lock
from mmagic_vico.utils.logging import add_verbose_flag, setup_logging
from mmagic_vico.utils.manifest import write_manifest


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a personalization model (ViCo, ...) with mmengine.')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where logs, checkpoints and weights go (default '
                        'work_dirs/<config>/<concept>)')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the newest complete checkpoint of the work dir if none is '
                             'given')
    parser.add_argument('--overwrite', action='store_true',
                        help='train from the start in a work dir holding another run\'s exports (they are removed)')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions,
                        help='override config keys, e.g. concept_dir=NAME model.pretrained_model=PATH')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_verbose_flag(parser)
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.resume is not None and args.overwrite:
        parser.error('--resume continues the run in the work dir and --overwrite replaces it: give one of them.')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def scale_embedding_lr(cfg) -> None:
    """The original's learning rate: base lr x processes x batch x accumulation, embedding only."""
    factor = (int(os.environ.get('WORLD_SIZE', 1)) * cfg.train_dataloader.batch_size
              * cfg.optim_wrapper.get('accumulative_counts', 1))
    keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
    keys.trainable_embeddings.lr_mult = keys.trainable_embeddings.get('lr_mult', 1.0) * factor


def setup_cpu_distributed(cfg, launcher: str) -> None:
    """mmengine's init pins a CUDA device and gives DDP ``device_ids``: neither exists on a CPU.
    Start the gloo process group here instead (mmengine then skips its own init)."""
    if launcher == 'none':
        return
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if k not in os.environ]
    if launcher == 'pytorch' and missing:
        raise InvalidValueError(f'--launcher pytorch: {missing} are not set; they come from torchrun: start the '
                                'processes with bash tools/dist_train.sh CONFIG N (or torchrun), or leave --launcher '
                                'out for one process.')
    if torch.cuda.is_available():
        return
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo')
    cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False)


def add_tensorboard_if_installed(cfg) -> None:
    """Sample grids and losses also go to TensorBoard when it is installed."""
    backends = cfg.get('visualizer', {}).get('vis_backends')
    if backends is None or importlib.util.find_spec('tensorboard') is None:
        return
    if not any('Tensorboard' in b.get('type', '') for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))


def build_cfg(args):
    cfg = load_config(args.config, args.cfg_options)  # a typo in an option fails here, before any work
    cfg.launcher = args.launcher
    check_train_cfg(cfg, args.config)
    cfg.work_dir = work_dir_of(cfg, args.config, args.work_dir)
    if args.amp:
        cfg.optim_wrapper = amp_optim_wrapper(cfg.optim_wrapper)
    if args.resume == 'auto':  # the work dir's newest complete checkpoint: found in main
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        check_checkpoint_file(args.resume)
        cfg.resume, cfg.load_from = True, args.resume
    if cfg.get('scale_embedding_lr', False):
        scale_embedding_lr(cfg)
    setup_cpu_distributed(cfg, args.launcher)
    add_tensorboard_if_installed(cfg)
    return cfg


def check_checkpoint_file(path: str) -> None:
    """``--resume CKPT`` names a whole checkpoint (found out here, not after the model has loaded)."""
    if not os.path.isfile(path):
        raise MissingFileError(f'--resume {path!r}: the checkpoint does not exist; give an iter_N.pth of the work '
                               'dir, or --resume alone to take the newest complete checkpoint of --work-dir.')
    problem = checkpoint_problem(path)
    if problem:
        raise InvalidValueError(f'--resume {path!r}: the checkpoint is truncated or not a PyTorch checkpoint '
                                f'({problem}); resume from an earlier iter_N.pth of the work dir (or from --resume '
                                'alone, which takes the newest complete one).')


def main(argv=None):
    args = parse_args(argv)
    setup_logging(args.verbose)
    register_all_modules()
    cfg = build_cfg(args)
    check_training_inputs(cfg)  # photos, templates, hooks' settings, class-image cache: before the model loads
    checks.output_dir(cfg.work_dir, '--work-dir')
    first = int(os.environ.get('RANK', '0')) == 0  # one process checks, locks and records the folder
    with folder_lock(cfg.work_dir) if first else contextlib.nullcontext():
        record = run_record(cfg, args.config)
        if first:
            check_run_folder(cfg.work_dir, record, resume=args.resume is not None, overwrite=args.overwrite)
        if args.resume == 'auto':
            cfg.load_from = resume_point(cfg.work_dir, repair=first)
            if cfg.load_from is None:
                warnings.warn(f'--resume: {cfg.work_dir} holds no complete checkpoint (iter_N.pth): training from '
                              'the start.')
                cfg.resume = False
        if first:
            write_manifest(cfg.work_dir, record)
        runner = QuietRunner.from_cfg(cfg)
        runner.train()


if __name__ == '__main__':
    run_tool(main)
