import os

import pytest
import torch
from mmengine import Config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CONFIG = os.path.join(REPO, 'configs', 'vico', 'vico_tiny.py')
#: DreamBench (the dataset/ folder of github.com/google/dreambooth: 30 subjects and prompts_and_classes.txt):
#: $MMAGIC_VICO_DREAMBENCH, else the copy beside the project's worktrees (../shared/data/dreambench).
DREAMBENCH = os.path.abspath(os.environ.get('MMAGIC_VICO_DREAMBENCH')
                             or os.path.join(REPO, '..', 'shared', 'data', 'dreambench'))
NO_DREAMBENCH = (f'DreamBench is not at {DREAMBENCH}: git clone https://github.com/google/dreambooth and set '
                 'MMAGIC_VICO_DREAMBENCH=<clone>/dataset')
needs_dreambench = pytest.mark.skipif(not os.path.isfile(os.path.join(DREAMBENCH, 'prompts_and_classes.txt')),
                                      reason=NO_DREAMBENCH)

os.environ.setdefault('HF_HUB_OFFLINE', '1')  # every test runs offline


@pytest.fixture(scope='session')
def tiny_cfg():
    from mmagic_vico.utils import register_all_modules
    register_all_modules()
    return Config.fromfile(TINY_CONFIG)


@pytest.fixture(scope='session')
def tiny_path(tiny_cfg):
    from mmagic_vico.models.tiny_sd import ensure_tiny_sd
    path = os.path.normpath(tiny_cfg.model.pretrained_model)
    ensure_tiny_sd(path)
    return path


@pytest.fixture(scope='session')
def short_run(tmp_path_factory, tiny_path):
    """A finished run of the tiny default (tests/helpers/runs.py: SHORT_RUN, 4 iterations), made once for the
    tests that read it (or a copy of it); none changes it."""
    from .helpers.runs import train_short_run
    work_dir = tmp_path_factory.mktemp('short_run') / 'finished'
    train_short_run(work_dir)
    return work_dir


@pytest.fixture
def vico(tiny_cfg, tiny_path):
    from mmagic_vico.registry import MODELS
    torch.manual_seed(0)  # the IMCA blocks take PyTorch's default (random) initialisation
    return MODELS.build(tiny_cfg.model)


@pytest.fixture
def reference_image():
    from PIL import Image
    g = torch.Generator().manual_seed(3)
    pixels = (torch.rand(90, 70, 3, generator=g) * 255).to(torch.uint8).numpy()
    return Image.fromarray(pixels)


@pytest.fixture(scope='session')
def readme_repo(tmp_path_factory, tiny_path):
    """A scratch copy of the repository in which the README's main command ran, once per session:
    ``(folder, its terminal output)`` (tests/test_readme.py; the toy-world tests read what it trained)."""
    import subprocess

    from .helpers.readme import main_command
    from .helpers.scratch_repo import make_scratch_repo, scratch_env
    repo = make_scratch_repo(str(tmp_path_factory.mktemp('readme')))
    command, _ = main_command()
    proc = subprocess.run(['bash', '-c', command], cwd=repo, env=scratch_env(repo), capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, f'{command}\nfailed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    return repo, proc.stdout + proc.stderr
