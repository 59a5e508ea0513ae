"""Tools run as a user runs them, in processes of their own; and the short run of the tiny default that
several tests read."""
import concurrent.futures
import os
import subprocess
import sys

from ..conftest import REPO, TINY_CONFIG

#: for processes that run at the same time as others (and for those whose results are compared with theirs)
ONE_THREAD = dict(OMP_NUM_THREADS='1')

#: 4 iterations at 64 px, a checkpoint and an export every 2, one 2-step sample grid at the end
SHORT_RUN = ['train_cfg.max_iters=4', 'train_dataloader.dataset.resolution=64', 'default_hooks.checkpoint.interval=2',
             'default_hooks.export.interval=2', 'default_hooks.sample_grid.interval=4',
             'default_hooks.sample_grid.num_inference_steps=2', 'default_hooks.sample_grid.height=64',
             'default_hooks.sample_grid.width=64', 'default_hooks.logger.interval=2']


def run(args, cwd=REPO, env=None, check=True, timeout=3600):
    """Run a tool as a user does. ``timeout`` only stops a hung run: a loaded machine may take long."""
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONPATH=REPO, **(env or {}))
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


def run_together(*commands, env=None, **kwargs) -> list:
    """``run`` of each command (same keywords), all at once, one thread each (together they keep the cores
    busy without contending for them): independent runs that would leave a core idle one after the other.
    Their completed processes, in order."""
    env = dict(ONE_THREAD, **(env or {}))
    with concurrent.futures.ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda args: run(args, env=env, **kwargs), commands))


def train_short_run(work_dir) -> None:
    """tools/train.py on the tiny default with the SHORT_RUN schedule into ``work_dir``."""
    run([sys.executable, 'tools/train.py', TINY_CONFIG, '--work-dir', str(work_dir), '--cfg-options', *SHORT_RUN])
