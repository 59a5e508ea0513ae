"""The README as a newcomer follows it, in a scratch copy of the repository (tests/helpers/scratch_repo.py):
its main command, every ```python snippet, and every command marked as one for the offline default, each
run as written. Markers are HTML comments on the line before a fenced block (invisible on GitHub):

- ``<!-- main-command -->``: the main command; run once per session, before the snippets and commands
  that use what it wrote (its output must be short: progress and where things went, no config dump);
- ``<!-- runs-offline -->``: a command that must finish without error;
- ``<!-- runs-offline: server -->``: a command that serves a page (the demo): it must come up, then stops.

Steps that make the environment (``python3 -m venv``, activating it, ``bash tools/install.sh``) are left
out: the interpreter running the tests is that environment. Unmarked shell blocks (Stable Diffusion 1.5,
GPUs, the test command itself) are not run here.
"""
import os
import re
import subprocess

import pytest

from .conftest import DREAMBENCH, NO_DREAMBENCH
from .helpers.demo_server import free_port, serving
from .helpers.readme import as_run_here, blocks, main_command, marked
from .helpers.scratch_repo import scratch_env
from .test_utils.test_logging import DUMPS, NOISE

#: The main command prints this many lines at most (it printed 517 before the terminal was made quiet).
MAX_LINES = 60


def skip_without_dreambench(command: str) -> None:
    if 'dreambench' in command and not os.path.isfile(os.path.join(DREAMBENCH, 'prompts_and_classes.txt')):
        pytest.skip(NO_DREAMBENCH)


def test_the_readme_has_what_this_test_runs():
    command, promised = main_command()
    assert 'tools/train.py' in command and promised
    assert [b for language, b, *_ in blocks() if language == 'python']
    assert marked('runs-offline') and marked('runs-offline: server')
    # the environment steps go, the rest stays as written
    assert as_run_here('python3 -m venv .venv && . .venv/bin/activate && bash tools/install.sh && python a.py') \
        == 'python a.py'


def test_main_command_writes_what_it_promises_and_prints_little(readme_repo):
    repo, output = readme_repo
    _, promised = main_command()
    missing = [p for p in promised if not os.path.exists(os.path.join(repo, p))]
    assert not missing, f'the README promises {missing}'
    lines = output.splitlines()
    assert len(lines) <= MAX_LINES, f'{len(lines)} lines:\n{output[-3000:]}'
    assert not [d for d in DUMPS if d in output] and not [n for n in NOISE if n in output]
    assert 'Iter(train)' in output and '100%|' in output  # training's interval lines, sampling's progress bar
    assert re.search(r'grid\.png', output)  # where the samples went


@pytest.mark.parametrize('snippet', [b for language, b, *_ in blocks() if language == 'python'],
                         ids=lambda s: s.strip().splitlines()[0][:40])
def test_python_snippet_runs_as_written(readme_repo, snippet, monkeypatch):
    repo, _ = readme_repo
    monkeypatch.chdir(repo)
    exec(compile(snippet, 'README.md', 'exec'), {'__name__': '__main__'})


@pytest.mark.parametrize('command', marked('runs-offline'), ids=lambda c: as_run_here(c)[:60])
def test_offline_command_runs_as_written(readme_repo, command):
    skip_without_dreambench(command)
    repo, _ = readme_repo
    proc = subprocess.run(['bash', '-c', as_run_here(command)], cwd=repo, env=scratch_env(repo), capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, f'{command}\nfailed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'


@pytest.mark.parametrize('command', marked('runs-offline: server'), ids=lambda c: as_run_here(c)[:60])
def test_serving_command_comes_up_as_written(readme_repo, command, tmp_path):
    repo, _ = readme_repo
    log = tmp_path / 'server.log'
    env = scratch_env(repo, GRADIO_SERVER_PORT=str(free_port()))  # where the search for a free port starts
    with serving(['bash', '-c', as_run_here(command)], repo, env, str(log)) as url:
        assert url.startswith('http://127.0.0.1:')
    text = log.read_text()
    assert 'share=True' not in text and 'Traceback' not in text
