"""Crash safety, as a user meets it: a run killed with SIGKILL mid-training and resumed with --resume
ends with exactly the trainable weights of an uninterrupted run (CPU, fixed seed); a run whose loss
turns NaN stops with the last good weights exported and a message saying what to change."""
import concurrent.futures
import os
import re
import signal
import subprocess
import sys
import time

import torch

from ..conftest import REPO, TINY_CONFIG
from ..helpers.runs import ONE_THREAD, run
from ..test_tools.test_train import trainable

# 12 iterations at 64 px, a checkpoint and an export every 4, one 2-step sample grid at the end
SCHEDULE = ['train_cfg.max_iters=12', 'train_dataloader.dataset.resolution=64', 'default_hooks.checkpoint.interval=4',
            'default_hooks.export.interval=4', 'default_hooks.sample_grid.interval=12',
            'default_hooks.sample_grid.num_inference_steps=2', 'default_hooks.sample_grid.height=64',
            'default_hooks.sample_grid.width=64', 'default_hooks.logger.interval=4']


def command(work_dir, *extra, options=SCHEDULE):
    return [sys.executable, 'tools/train.py', TINY_CONFIG, '--work-dir', str(work_dir), *extra,
            '--cfg-options', *options]


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path, tiny_path):
    killed, straight = tmp_path / 'killed', tmp_path / 'straight'
    # every run on one thread: the uninterrupted one runs meanwhile (the other core), the same kernels in each
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONPATH=REPO, **ONE_THREAD)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        uninterrupted = pool.submit(run, command(straight), env=ONE_THREAD)
        proc = subprocess.Popen(command(killed), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 3600  # only a hung run: a loaded machine may be slow to get there
            while not (killed / 'last_checkpoint').exists():  # written right after the first checkpoint
                assert proc.poll() is None, 'training ended before its first checkpoint'
                assert time.time() < deadline, 'no checkpoint within an hour'
                time.sleep(0.02)
            still_training = proc.poll() is None
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        assert still_training and proc.returncode == -signal.SIGKILL
        assert not (killed / 'vico_weights_iter_12.safetensors').exists()  # killed mid-run, before the end
        resumed = run(command(killed, '--resume'), env=ONE_THREAD)  # the latest whole checkpoint of the work dir
        assert 'resumed' in resumed.stdout + resumed.stderr
        uninterrupted.result()
    a, b = trainable(straight / 'vico_weights.safetensors'), trainable(killed / 'vico_weights.safetensors')
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    first = trainable(straight / 'vico_weights_iter_4.safetensors')
    assert any(not torch.equal(first[k], a[k]) for k in a)  # the resumed part really trained


def test_nan_loss_stops_with_the_last_good_weights_kept(tmp_path, tiny_path):
    """A learning rate far too high (3e5, no weight decay) makes the loss NaN at iteration 4 on this seed;
    the weights after iteration 2, the last whose loss was finite, are exported and equal those of a
    run of 2 iterations (started meanwhile, on the other core; run again for another iteration if the
    loss turns NaN elsewhere)."""
    diverging = ['optim_wrapper.optimizer.lr=3e5', 'optim_wrapper.optimizer.weight_decay=0',
                 'default_hooks.export.interval=1', 'default_hooks.checkpoint.interval=100']
    work = tmp_path / 'nan'

    def run_of(iterations):  # the same schedule, stopped after ``iterations``
        short = tmp_path / f'short_{iterations}'
        run(command(short, options=SCHEDULE + diverging + [f'train_cfg.max_iters={iterations}']), env=ONE_THREAD)
        return short

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        expected = 2
        reference = pool.submit(run_of, expected)
        proc = run(command(work, options=SCHEDULE + diverging), check=False, env=ONE_THREAD)
        assert proc.returncode != 0
        found = re.search(r'^error: Training stopped at iteration (\d+): the loss is not finite.*', proc.stderr, re.M)
        assert found and 'Traceback' not in proc.stderr, proc.stderr[-3000:]  # a message, not a traceback
        message, stopped = found.group(0), int(found.group(1))
        good = stopped - 2
        assert good >= 1, message
        short = reference.result() if good == expected else run_of(good)
    kept = work / f'vico_weights_iter_{good}.safetensors'
    assert str(kept) in message and 'fp32' in message and 'lower learning rate' in message
    weights, latest = trainable(kept), trainable(work / 'vico_weights.safetensors')
    assert all(v.isfinite().all() for v in weights.values())
    assert all(torch.equal(weights[k], latest[k]) for k in weights)  # the latest export was rolled back to it
    assert not (work / f'vico_weights_iter_{stopped}.safetensors').exists()  # nothing of the NaN iteration
    reference = trainable(short / 'vico_weights.safetensors')
    assert all(torch.equal(weights[k], reference[k]) for k in reference)
