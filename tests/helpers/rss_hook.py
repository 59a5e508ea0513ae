"""A test-only hook: the process's resident memory (VmRSS, from /proc) every ``interval`` iterations,
appended to ``work_dir/rss.jsonl`` as ``{"iter": n, "rss_mb": x}``."""
import json
import os

from mmengine.hooks import Hook

from mmagic_vico.registry import HOOKS


def rss_mb() -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError('/proc/self/status has no VmRSS line')


@HOOKS.register_module()
class RSSHook(Hook):
    priority = 'LOWEST'  # after the export, sample and checkpoint hooks of the same iteration

    def __init__(self, interval: int = 10):
        self.interval = interval

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.every_n_train_iters(runner, self.interval):
            with open(os.path.join(runner.work_dir, 'rss.jsonl'), 'a') as f:
                f.write(json.dumps({'iter': runner.iter + 1, 'rss_mb': rss_mb()}) + '\n')
