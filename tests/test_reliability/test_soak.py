"""Soak: the tiny default trains 300 iterations with an export every 20, a sample grid every 50 and a
checkpoint every 100, and its resident memory does not grow once warmed up. Only the memory growth is
bounded, never the time: on a loaded machine the run takes longer and the test waits."""
import json
import sys

from ..conftest import TINY_CONFIG
from ..helpers.runs import run

ITERS = 300
# Bound on the growth of VmRSS from iteration 100 (after the first checkpoint, sample grid and
# exports have allocated what they keep) to the end. Measured on the reference machine: +1.9 MB over
# 300 iterations of a healthy run (docs/reliability.md), versus +1.35 MB *per iteration* when each
# iteration's outputs (and so its autograd graph) are kept alive, so 20 MB over 200 iterations is far
# above allocator noise and far below any leak of a graph, an attention map or a latent per iteration
# (>= 100 kB/iteration would exceed it).
GROWTH_MB = 20.0


def test_long_run_memory_stays_flat(tmp_path, tiny_path):
    config = tmp_path / 'soak.py'
    config.write_text(f"_base_ = ['{TINY_CONFIG}']\n"
                      "custom_imports = dict(imports=['mmagic_vico.models', 'tests.helpers.rss_hook'])\n"
                      "custom_hooks = [dict(type='RSSHook', interval=10)]\n")
    work = tmp_path / 'out'
    run([sys.executable, 'tools/train.py', str(config), '--work-dir', str(work),
         '--cfg-options', f'train_cfg.max_iters={ITERS}', 'train_dataloader.batch_size=1',
         'train_dataloader.dataset.resolution=64', 'default_hooks.logger.interval=50',
         'default_hooks.checkpoint.interval=100', 'default_hooks.checkpoint.max_keep_ckpts=2',
         'default_hooks.export.interval=20', 'default_hooks.sample_grid.interval=50',
         'default_hooks.sample_grid.num_images=1', 'default_hooks.sample_grid.num_inference_steps=2',
         'default_hooks.sample_grid.height=64', 'default_hooks.sample_grid.width=64'],
        timeout=None)  # the bound is on memory growth, not on the machine's speed: a loaded machine takes longer
    samples = {r['iter']: r['rss_mb'] for r in map(json.loads, (work / 'rss.jsonl').read_text().splitlines())}
    assert sorted(samples) == list(range(10, ITERS + 1, 10))
    # everything periodic really ran, and old checkpoints were removed as they should be
    assert (work / f'vico_weights_iter_{ITERS}.safetensors').exists() and (work / 'vis' / f'iter_{ITERS}.png').exists()
    assert len(list(work.glob('vico_weights_iter_*.safetensors'))) == ITERS // 20
    assert len(list(work.glob('vis/iter_*.png'))) == ITERS // 50
    assert sorted(p.name for p in work.glob('iter_*.pth')) == ['iter_200.pth', 'iter_300.pth']
    plateau, end = samples[100], max(samples[i] for i in range(ITERS - 20, ITERS + 1, 10))
    print(f'VmRSS: {samples[10]:.1f} MB at iteration 10, {plateau:.1f} MB at 100, {end:.1f} MB at {ITERS}')
    assert end - plateau < GROWTH_MB, samples
