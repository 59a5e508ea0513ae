"""A test-only hook: every rank writes its trainable weights, so a test can compare the ranks."""
import os

from mmengine.dist import get_rank
from mmengine.hooks import Hook

from mmagic_vico.engine.hooks import unwrap
from mmagic_vico.registry import HOOKS


@HOOKS.register_module()
class EveryRankWeightsHook(Hook):

    def after_train(self, runner):
        unwrap(runner.model).save_vico_weights(os.path.join(runner.work_dir, f'rank{get_rank()}.safetensors'))
