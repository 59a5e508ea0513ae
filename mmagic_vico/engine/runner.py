"""The runner of the tools and the demo: mmengine's ``Runner`` with the quiet terminal of
``utils/logging.py`` (the environment report, config dump, hook table and parameter groups go to the
log file only, unless ``--verbose``), and a last line that says where everything went.

mmengine keys a run's logger, visualizer, message hub and scope by its experiment name, which ends
in a timestamp of whole seconds. A second runner started in the same second of one process (the demo
after a failed start, a test) would be handed the first one's logger and visualizer, writing into the
first run's folder (gone if that run was cleaned up). Every runner after the first in a process
therefore gets a numbered name."""
import itertools
import os

from mmengine.runner import Runner

from mmagic_vico.utils.logging import quiet_terminal


_RUNS = itertools.count()


class QuietRunner(Runner):

    def __init__(self, *args, experiment_name=None, cfg=None, **kwargs):
        number = next(_RUNS)
        if number:
            filename = getattr(cfg, 'filename', None)
            base = experiment_name or (os.path.splitext(os.path.basename(filename))[0] if filename else 'run')
            experiment_name = f'{base}_{number}'
        super().__init__(*args, experiment_name=experiment_name, cfg=cfg, **kwargs)

    def build_logger(self, log_level='INFO', log_file=None, **kwargs):
        return quiet_terminal(super().build_logger(log_level, log_file, **kwargs))

    def train(self):
        model = super().train()
        self.logger.info(f'done: weights, checkpoints and sample grids (vis/) in {self.work_dir}; '
                         f'the full log in {self.logger.log_file}')
        return model
