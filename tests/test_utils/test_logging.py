"""The quiet terminal: the runner's dumps go to the log file only (terminal with --verbose), warnings that
do not apply are dropped. The main command's own output is checked in tests/test_readme.py."""
import logging
import sys

from mmengine.logging import MMLogger

from mmagic_vico.utils.logging import quiet_terminal, setup_logging

from ..conftest import TINY_CONFIG
from ..test_tools.test_train import SHORT, run

NOISE = ('Failed to search registry', '"FileClient" will be deprecated', '"HardDiskBackend" is the alias',
         '`save_param_scheduler` is True', 'has no metainfo', 'requires torchvision')
DUMPS = ('System environment:', 'Config:\n', 'Hooks will be executed in the following order', 'paramwise_options -- ')


def log_everything(logger):
    logger.info('\n' + '-' * 60 + '\nSystem environment:\n    sys.platform: linux\n' + '-' * 60)
    logger.info('Config:\nmodel = dict(type="ViCo")')
    logger.info('Hooks will be executed in the following order:\nbefore_run: ...')
    logger.info('paramwise_options -- text_encoder.x:lr=0.005')
    logger.warning('"FileClient" will be deprecated in future. Please use io functions in ...')
    logger.info('Iter(train) [ 10/100]  loss: 1.1311')
    logger.warning('5 concept photos: something real')


def test_terminal_shows_progress_and_real_warnings_the_log_file_everything(tmp_path, capsys):
    setup_logging(verbose=False)
    log_file = tmp_path / 'run.log'
    logger = quiet_terminal(MMLogger.get_instance('quiet-test', log_file=str(log_file)))
    log_everything(logger)
    terminal = capsys.readouterr().out
    assert 'Iter(train) [ 10/100]' in terminal and 'something real' in terminal
    assert not [d for d in DUMPS + ('FileClient',) if d in terminal]
    for handler in logger.handlers:
        handler.flush()
    assert all(d in log_file.read_text() for d in DUMPS + ('FileClient',))  # nothing is lost


def test_verbose_terminal_shows_the_dumps(tmp_path, capsys):
    setup_logging(verbose=True)
    try:
        logger = quiet_terminal(MMLogger.get_instance('verbose-test', log_file=str(tmp_path / 'run.log')))
        log_everything(logger)
    finally:
        setup_logging(verbose=False)
    terminal = capsys.readouterr().out
    assert all(d in terminal for d in DUMPS) and 'FileClient' not in terminal


def test_transformers_torchvision_fallback_notice_is_dropped(capfd):
    """The real notice, raised by transformers itself (its wording changing fails this test), for an image
    processor nothing else here asks for (transformers gives the notice once per class and process)."""
    import transformers

    from mmagic_vico.utils.logging import DropMatching
    setup_logging()
    drops = [f for f in logging.getLogger('transformers.utils.import_utils').filters if isinstance(f, DropMatching)]
    before = drops[0].dropped
    assert transformers.MobileNetV2ImageProcessor.__name__ == 'MobileNetV2ImageProcessorPil'  # the fallback
    assert drops[0].dropped == before + 1 and 'requires torchvision' not in ''.join(capfd.readouterr())


def test_warnings_are_one_line_unless_verbose(recwarn):
    import warnings
    setup_logging(verbose=False)
    assert warnings.formatwarning('photos are small', UserWarning, '/x/y.py', 3) == 'UserWarning: photos are small\n'
    setup_logging(verbose=True)
    try:
        assert '/x/y.py:3' in warnings.formatwarning('photos are small', UserWarning, '/x/y.py', 3)
    finally:
        setup_logging(verbose=False)
    assert logging.getLogger('mmagic_vico').handlers  # the demo's own lines have a handler


def test_train_verbose_prints_the_config_and_no_noise(tmp_path, tiny_path):
    proc = run([sys.executable, 'tools/train.py', TINY_CONFIG, '--verbose', '--work-dir', str(tmp_path),
                '--cfg-options', *SHORT, 'train_cfg.max_iters=1'])
    out = proc.stdout + proc.stderr
    assert all(d in out for d in DUMPS), out[-2000:]
    assert not [n for n in NOISE if n in out]
    assert 'done: weights, checkpoints and sample grids' in out


def test_runners_started_in_the_same_second_keep_their_own_logs(tmp_path, monkeypatch, tiny_path):
    """mmengine names a run's logger and visualizer by experiment name + a timestamp of whole seconds;
    a second runner of the same second must not write into the first one's folder."""
    import time

    from mmengine import Config

    from mmagic_vico.engine.runner import QuietRunner
    from mmagic_vico.utils.config import apply_cfg_options
    monkeypatch.setattr(time, 'strftime', lambda fmt, *a: '20260101_000000')  # both in one second
    runners = []
    for name in ('a', 'b'):
        cfg = apply_cfg_options(Config.fromfile(TINY_CONFIG), {'model.pretrained_model': tiny_path})
        cfg.work_dir = str(tmp_path / name)
        cfg.experiment_name = 'demo'
        runners.append(QuietRunner.from_cfg(cfg))
    for name, runner in zip('ab', runners):
        assert runner.logger.log_file.startswith(str(tmp_path / name))
        assert runner.visualizer._vis_backends['LocalVisBackend']._save_dir.startswith(str(tmp_path / name))
    assert runners[0].experiment_name != runners[1].experiment_name
