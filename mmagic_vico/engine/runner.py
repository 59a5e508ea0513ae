"""The runner of the tools and the demo: mmengine's ``Runner`` with the quiet terminal of
``utils/logging.py`` (the environment report, config dump, hook table and parameter groups go to the
log file only, unless ``--verbose``), and a last line that says where everything went."""
from mmengine.runner import Runner

from mmagic_vico.utils.logging import quiet_terminal


class QuietRunner(Runner):

    def build_logger(self, log_level='INFO', log_file=None, **kwargs):
        return quiet_terminal(super().build_logger(log_level, log_file, **kwargs))

    def train(self):
        model = super().train()
        self.logger.info(f'done: weights, checkpoints and sample grids (vis/) in {self.work_dir}; '
                         f'the full log in {self.logger.log_file}')
        return model
