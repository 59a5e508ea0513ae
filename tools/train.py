"""Train a concept with mmengine's Runner.

    python tools/train.py configs/vico/vico.py [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options concept_dir=my_dog initialize_token=dog model.pretrained_model=/data/sd15]
    bash tools/dist_train.sh configs/vico/vico.py 4      # 4 processes (GPUs; gloo on a CPU)
"""
import argparse
import importlib.util
import os

import torch
from mmengine.config import DictAction

from mmagic_vico.engine import QuietRunner, amp_optim_wrapper
from mmagic_vico.utils import register_all_modules
from mmagic_vico.utils.config import check_train_cfg, load_config, work_dir_of
from mmagic_vico.utils.logging import add_verbose_flag, setup_logging


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a personalization model (ViCo, ...) with mmengine.')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where logs, checkpoints and weights go (default work_dirs/<config>)')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint of the work dir if none is given')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. concept_dir=NAME model.pretrained_model=PATH')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
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
    if launcher == 'none' or torch.cuda.is_available():
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
    check_train_cfg(cfg)
    cfg.work_dir = work_dir_of(cfg, args.config, args.work_dir)
    if args.amp:
        cfg.optim_wrapper = amp_optim_wrapper(cfg.optim_wrapper)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if cfg.get('scale_embedding_lr', False):
        scale_embedding_lr(cfg)
    setup_cpu_distributed(cfg, args.launcher)
    add_tensorboard_if_installed(cfg)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    setup_logging(args.verbose)
    register_all_modules()
    cfg = build_cfg(args)
    runner = QuietRunner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
