"""One mechanism for user mistakes in every tool: a clean message and a non-zero exit, the traceback only
with --debug (or MMAGIC_VICO_DEBUG=1) and for real bugs (mmagic_vico/utils/errors.py: run_tool)."""
import ast
import concurrent.futures
import errno
import os
import subprocess
import sys

import pytest

from mmagic_vico.utils.errors import (DEBUG_ENV, ConflictError, InvalidValueError, MissingFileError, UserError,
                                      run_tool)

from ..conftest import REPO, TINY_CONFIG

#: Every tool of tools/, those added later included.
TOOLS = sorted(os.path.splitext(name)[0] for name in os.listdir(os.path.join(REPO, 'tools'))
               if name.endswith('.py') and name != '__init__.py')


def exit_of(main, argv, capsys, monkeypatch, env=None):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as info:
        run_tool(main, argv)
    return info.value.code, capsys.readouterr().err


def raising(error):
    def main(argv):
        raise error
    return main


@pytest.mark.parametrize('error', [InvalidValueError('steps=0 must be a positive integer'),
                                   MissingFileError("image 'x.png' does not exist"),
                                   ConflictError('work_dirs/a is in use by a training run (pid 1)')])
def test_a_user_error_is_one_message_and_exit_1(error, capsys, monkeypatch):
    code, err = exit_of(raising(error), [], capsys, monkeypatch)
    assert code == 1 and err.startswith(f'error: {error}\n') and 'Traceback' not in err and '--debug' in err
    assert isinstance(error, UserError)


def test_debug_flag_or_variable_shows_the_traceback(monkeypatch):
    with pytest.raises(InvalidValueError):
        run_tool(raising(InvalidValueError('x=1 is wrong')), ['--debug'])
    monkeypatch.setenv(DEBUG_ENV, '1')
    with pytest.raises(InvalidValueError):
        run_tool(raising(InvalidValueError('x=1 is wrong')), [])


def test_a_bug_keeps_its_traceback(monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    with pytest.raises(ZeroDivisionError):
        run_tool(raising(ZeroDivisionError('division by zero')), [])
    with pytest.raises(ValueError):  # a plain ValueError is not ours to explain: a bug, or a case to fix at its source
        run_tool(raising(ValueError('too many values to unpack')), [])


def test_the_original_message_survives_mmengines_rewrapping(capsys, monkeypatch):
    """mmengine's registry re-raises a build error as ``type(e)('class `X` in ...: ' + str(e))``."""
    def main(argv):
        try:
            raise InvalidValueError("placeholder='dog' is already a token")
        except Exception as e:
            raise type(e)(f'class `ViCo` in mmagic_vico/models/vico/vico.py: {e}')
    code, err = exit_of(main, [], capsys, monkeypatch)
    assert code == 1 and err.startswith("error: placeholder='dog' is already a token\n")


def test_full_disk_out_of_memory_and_ctrl_c_are_messages_too(capsys, monkeypatch):
    code, err = exit_of(raising(OSError(errno.ENOSPC, 'No space left on device')), [], capsys, monkeypatch)
    assert code == 1 and 'the disk is full' in err and 'Free space' in err and 'Traceback' not in err
    code, err = exit_of(raising(MemoryError()), [], capsys, monkeypatch)
    assert code == 1 and 'out of memory' in err and 'batch_size' in err
    code, err = exit_of(raising(KeyboardInterrupt()), [], capsys, monkeypatch)
    assert code == 130 and 'interrupted' in err and 'Traceback' not in err


def test_a_non_zero_status_of_main_is_the_exit_status(capsys, monkeypatch):
    """toy_gates.py / train_toy_scorer.py return 1 when a gate is not reached: still their exit status."""
    code, err = exit_of(lambda argv: 1, [], capsys, monkeypatch)
    assert code == 1 and err == ''
    run_tool(lambda argv: 0, [])  # 0, None or a result (infer returns its images): a normal end
    run_tool(lambda argv: ['an image'], [])


@pytest.mark.parametrize('tool', TOOLS)
def test_every_tool_runs_through_the_entry_wrapper_and_takes_debug(tool):
    tree = ast.parse(open(os.path.join(REPO, 'tools', f'{tool}.py')).read())
    main_block = next(n for n in tree.body if isinstance(n, ast.If) and 'main' in ast.unparse(n.test))
    assert ast.unparse(main_block.body[0]).strip() == 'run_tool(main)', tool
    assert "add_debug_flag(" in ast.unparse(tree)


def tool(name, *args, cwd=REPO):
    env = dict(os.environ, HF_HUB_OFFLINE='1', PYTHONPATH=REPO)
    env.pop(DEBUG_ENV, None)
    return subprocess.run([sys.executable, os.path.join(REPO, 'tools', f'{name}.py'), *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


def a_file(tmp_path):
    path = tmp_path / 'taken'
    path.write_text('not a folder')
    return str(path)


CASES = {  # tool -> (arguments, what the message must name), each caught before any work
    'train': (lambda t: [TINY_CONFIG, '--work-dir', str(t / 'w'), '--cfg-options', 'model.reg_loss_weight=nan'],
              ['model.reg_loss_weight=nan', 'finite']),
    'infer': (lambda t: [TINY_CONFIG, '--out-dir', a_file(t)], ['--out-dir', 'taken', 'is a file']),
    'evaluate': (lambda t: [TINY_CONFIG, '--dreambench', str(t), '--subjects', 'dog7', '--out-dir', a_file(t)],
                 ['--out-dir', 'is a file']),
    'compare': (lambda t: ['--dreambench', str(t), '--subjects', 'dog7', '--method', 'A', TINY_CONFIG,
                           '--out-dir', a_file(t)], ['--out-dir', 'is a file']),
    'demo': (lambda t: ['--concepts', str(t / 'nope')], ['--concepts', 'nope', 'do not exist']),
    'make_aesthetic_embedding': (lambda t: [os.path.join(REPO, 'data', 'vico', 'tiny_toy'), str(t)],
                                 ['OUT', 'is a folder', 'out.safetensors']),
    'make_tiny_concept': (lambda t: [a_file(t)], ['OUT_DIR', 'is a file']),
    'make_style_concept': (lambda t: [a_file(t)], ['OUT_DIR', 'is a file']),
    'convert_weights': (lambda t: ['embedding', 'a1111', str(t / 'nope.safetensors'), str(t / 'out.safetensors')],
                        ['embedding input', 'nope.safetensors', 'does not exist', 'give the path']),
    'dreambench': (lambda t: ['--dreambench', str(t), '--subjects', 'dog7', '--work-dir', a_file(t)],
                   ['--work-dir', 'is a file']),
    'train_toy_base': (lambda t: [a_file(t)], ['RUN_DIR', 'is a file']),
    'train_toy_scorer': (lambda t: ['--out', str(t)], ['--out', 'is a folder', 'give a file name']),
    'toy_gates': (lambda t: [str(t / 'nope')], ['FOLDER', 'nope', 'model_index.json', 'diffusers layout']),
    'make_toy_concepts': (lambda t: ['--out', a_file(t)], ['--out', 'is a file']),
}


def test_every_tool_has_a_user_mistake_case_here():
    assert sorted(CASES) == sorted(set(TOOLS) - {'benchmark'})  # benchmark: its flags (a usage error), below


@pytest.fixture(scope='module')
def from_the_shell(request, tmp_path_factory):
    """The cases of the tests below that this session runs, two at a time (each is a process importing its
    tool, a core apiece): {tool: (its completed process, its folder)}."""
    names = sorted({item.callspec.params['name'] for item in request.session.items
                    if getattr(item, 'originalname', None) == 'test_a_user_mistake_in_each_tool_from_the_shell'})
    folders = {name: tmp_path_factory.mktemp(name) for name in names}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        procs = list(pool.map(lambda name: tool(name, *CASES[name][0](folders[name])), names))
    return {name: (proc, folders[name]) for name, proc in zip(names, procs)}


@pytest.mark.parametrize('name', sorted(CASES))
def test_a_user_mistake_in_each_tool_from_the_shell(name, from_the_shell):
    """As a user runs them: one 'error:' line naming the input and the fix, exit status 1, no traceback."""
    named = CASES[name][1]
    proc, tmp_path = from_the_shell[name]
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    line = next(line for line in proc.stderr.splitlines() if line.startswith('error: '))
    for text in named:
        assert text in line, line
    assert not (tmp_path / 'w').exists()  # train: nothing made


def test_benchmark_refuses_bad_flags_before_building_anything():
    proc = tool('benchmark', '--size', '100')
    assert proc.returncode == 2 and '--size: 100 is not a multiple of 8' in proc.stderr and 'Traceback' not in proc.stderr


def test_debug_shows_the_traceback_from_the_shell(tmp_path):
    proc = tool('infer', TINY_CONFIG, '--out-dir', a_file(tmp_path), '--debug')
    assert proc.returncode == 1 and 'Traceback' in proc.stderr and 'InvalidValueError' in proc.stderr
