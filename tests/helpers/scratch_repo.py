"""A scratch copy of the repository in which a command runs exactly as a user types it in a fresh clone:
every top-level entry linked except ``work_dirs`` (its outputs land in the scratch folder, not in the
repository's), ``../shared/data/dreambench`` beside it, and ``python`` on the PATH being this interpreter."""
import os
import stat
import sys

from ..conftest import DREAMBENCH, REPO

SKIPPED = ('work_dirs', '.git', '.venv', '.pytest_cache')


def make_scratch_repo(root: str) -> str:
    """``root/repo`` (returned) and ``root/shared/data/dreambench`` -> the DreamBench folder."""
    repo = os.path.join(root, 'repo')
    os.makedirs(repo, exist_ok=True)
    for name in os.listdir(REPO):
        if name not in SKIPPED and not os.path.lexists(os.path.join(repo, name)):
            os.symlink(os.path.join(REPO, name), os.path.join(repo, name))
    shared = os.path.join(root, 'shared', 'data')
    os.makedirs(shared, exist_ok=True)
    if not os.path.lexists(os.path.join(shared, 'dreambench')):
        os.symlink(DREAMBENCH, os.path.join(shared, 'dreambench'))
    bin_dir = os.path.join(root, 'bin')
    os.makedirs(bin_dir, exist_ok=True)
    for name in ('python', 'python3'):  # a wrapper, not a link: a venv's interpreter finds its venv by its path
        path = os.path.join(bin_dir, name)
        with open(path, 'w') as f:
            f.write(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return repo


def scratch_env(repo: str, **extra) -> dict:
    """The environment of a user's shell in ``repo``: its ``python`` first on the PATH, offline."""
    bin_dir = os.path.join(os.path.dirname(repo), 'bin')
    return dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get('PATH', ''), PYTHONPATH=repo,
                HF_HUB_OFFLINE='1', **extra)
