"""A training run's folder: no silent overwrite of another run's exports, one live run per folder, and
--resume that follows the folder (moved, copied, with a truncated newest checkpoint, another batch)."""
import copy
import os
import shutil
import signal
import subprocess
import sys
import warnings

import pytest
from mmengine import Config

from mmagic_vico.engine.run_folder import check_run_folder, existing_exports, resume_point
from mmagic_vico.utils.config import apply_cfg_options, work_dir_of
from mmagic_vico.utils.errors import ConflictError
from mmagic_vico.utils.lock import folder_lock
from mmagic_vico.utils.manifest import read_manifest

from ..conftest import REPO, TINY_CONFIG
from ..helpers.runs import SHORT_RUN, run

SCHEDULE = SHORT_RUN  # 4 iterations at 64 px, a checkpoint and an export every 2, one 2-step sample grid at the end

TI_TINY = os.path.join(REPO, 'configs', 'textual_inversion', 'textual_inversion_tiny.py')


def train_args(work_dir, *extra, options=(), config=TINY_CONFIG):
    return [config, '--work-dir', str(work_dir), *extra, '--cfg-options', *SCHEDULE, *options]


@pytest.fixture
def finished(short_run):
    """A real finished run of the tiny default (4 iterations; conftest's short_run, shared with test_train)."""
    return short_run


def copy_of(run_dir, tmp_path, name='copy'):
    target = tmp_path / name
    shutil.copytree(run_dir, target)
    return target


def snapshot(folder):
    return {p: (os.path.getsize(p), os.path.getmtime(p)) for p in map(str, folder.rglob('*'))}


def other_concept(tmp_path):
    """A second concept: the tiny toy's photos under another name."""
    root = tmp_path / 'data'
    shutil.copytree(os.path.join(REPO, 'data', 'vico', 'tiny_toy'), root / 'robot2')
    return [f'data_root={root}', 'concept_dir=robot2']


@pytest.mark.parametrize('case, named', [
    ('placeholder', ['placeholder: "S*" -> "<x>"', 'another run']),
    ('concept', ['concept: "tiny_toy" -> "robot2"', 'another run']),
    ('method', ['method: "ViCo" -> "TextualInversion"', 'another run']),
    ('settings', ['optim_wrapper.optimizer.lr: 0.005 -> 0.001', 'other settings', '--resume']),
], ids=['placeholder', 'concept', 'method', 'settings'])
def test_a_run_into_another_runs_folder_stops_before_any_work(finished, tmp_path, case, named):
    from tools.train import main
    work = copy_of(finished, tmp_path)
    before = snapshot(work)
    options = {'placeholder': ['placeholder=<x>'], 'concept': other_concept(tmp_path), 'method': [],
               'settings': ['optim_wrapper.optimizer.lr=1e-3']}[case]
    config = TI_TINY if case == 'method' else TINY_CONFIG
    with pytest.raises(ConflictError) as info:
        main(train_args(work, options=options, config=config))
    message = str(info.value)
    for text in named + [str(work), 'iter_2.pth', '--work-dir', '--overwrite']:
        assert text in message, message
    assert snapshot(work) == before  # not a byte written, not a file touched


def test_the_same_run_again_warns_and_goes_on_another_process_count_stops(finished, tmp_path):
    record = read_manifest(str(finished))
    assert (record['method'], record['concept'], record['placeholder'], record['processes']) == \
        ('ViCo', 'tiny_toy', 'S*', 1)
    with pytest.warns(UserWarning, match='already holds the exports of this run'):
        check_run_folder(str(finished), record)
    quieter = copy.deepcopy(record)  # how often it logs, and from which file the config came, change nothing
    quieter['settings']['default_hooks']['logger']['interval'] = 50
    quieter['config'] = 'my_copy_of_vico_tiny.py'
    with pytest.warns(UserWarning, match='already holds the exports of this run'):
        check_run_folder(str(finished), quieter)
    four = dict(record, processes=4)  # bash tools/dist_train.sh CONFIG 4 into the single-process run's folder
    with pytest.raises(ConflictError, match=r'processes: 1 -> 4'):
        check_run_folder(str(finished), four)


def test_overwrite_removes_the_previous_exports_and_says_so(finished, tmp_path):
    work = copy_of(finished, tmp_path)
    other = dict(read_manifest(str(work)), placeholder='<x>')
    with pytest.warns(UserWarning, match=r'--overwrite: removed the previous exports .*iter_2\.pth'):
        check_run_folder(str(work), other, overwrite=True)
    assert existing_exports(str(work)) == []  # nothing of the other run is left to be resumed by mistake


def test_a_folder_without_a_record_is_refused_unless_resumed(finished, tmp_path):
    work = copy_of(finished, tmp_path)
    record = read_manifest(str(work))
    os.remove(work / '.manifest.json')  # written before runs recorded their settings
    with pytest.raises(ConflictError, match='whose settings are not recorded'):
        check_run_folder(str(work), record)
    check_run_folder(str(work), record, resume=True)


def test_default_work_dirs_keep_concepts_apart():
    tiny = Config.fromfile(TINY_CONFIG)
    sd15 = os.path.join(REPO, 'configs', 'vico', 'vico.py')
    mine = apply_cfg_options(Config.fromfile(sd15), dict(concept_dir='my_dog', initialize_token='dog'))
    dirs = [work_dir_of(tiny, TINY_CONFIG), work_dir_of(Config.fromfile(sd15), sd15), work_dir_of(mine, sd15)]
    assert dirs == ['work_dirs/vico_tiny/tiny_toy', 'work_dirs/vico/dog7', 'work_dirs/vico/my_dog']


# ------------------------------------------------------------------ one live run per folder
HOLD = ("import sys, time; sys.path.insert(0, {repo!r}); from mmagic_vico.utils.lock import folder_lock\n"
        "with folder_lock({folder!r}):\n    print('locked', flush=True); time.sleep(600)\n")


def holder(folder):
    proc = subprocess.Popen([sys.executable, '-c', HOLD.format(repo=REPO, folder=str(folder))],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'locked'
    return proc


def test_a_second_live_run_in_the_folder_is_refused_naming_the_first(tmp_path, tiny_path):
    from tools.train import main
    work = tmp_path / 'busy'
    proc = holder(work)
    try:
        with pytest.raises(ConflictError) as info:
            main(train_args(work))
        message = str(info.value)
        assert f'pid {proc.pid}' in message and 'in use by a training run' in message and '--work-dir' in message
        assert existing_exports(str(work)) == []
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # a crash: the lock file stays behind, naming a dead process
        proc.wait()
    assert (work / '.lock').exists()
    with pytest.warns(UserWarning, match=rf'taking over the lock of a run that is no longer running \(pid {proc.pid}'):
        with folder_lock(str(work)):
            pass
    assert not (work / '.lock').exists()  # released on exit


def test_a_second_toy_base_training_in_its_run_folder_is_refused(tmp_path):
    """tools/train_toy_base.py holds its RUN_DIR as train.py holds a work dir (an export only reads it)."""
    run_dir = tmp_path / 'toyrun'
    proc = holder(run_dir)
    try:
        second = run([sys.executable, 'tools/train_toy_base.py', str(run_dir), '--scenes', '8'], check=False)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert second.returncode == 1 and 'Traceback' not in second.stderr, second.stderr[-3000:]
    assert f'is in use by a toy-world base training (pid {proc.pid}' in second.stderr
    assert sorted(os.listdir(run_dir)) == ['.lock']  # nothing rendered, nothing logged
    export = run([sys.executable, 'tools/train_toy_base.py', str(run_dir), '--export', str(tmp_path / 'out')],
                 check=False)
    assert export.returncode == 1 and 'has no pipeline/ to export yet' in export.stderr


def test_the_lock_is_released_when_the_run_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with folder_lock(str(tmp_path)):
            raise RuntimeError('the run failed')
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no stale lock to take over
        with folder_lock(str(tmp_path)):
            pass


# ------------------------------------------------------------------ --resume follows the folder
@pytest.mark.parametrize('pointer', ['elsewhere', 'relative', 'empty', 'missing'])
def test_resume_point_is_this_folders_newest_checkpoint(finished, tmp_path, pointer):
    work = copy_of(finished, tmp_path)
    content = {'elsewhere': str(tmp_path / 'gone' / 'iter_4.pth'), 'relative': 'iter_4.pth', 'empty': '',
               'missing': None}[pointer]
    if content is None:
        os.remove(work / 'last_checkpoint')
    else:
        (work / 'last_checkpoint').write_text(content)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert resume_point(str(work)) == str(work / 'iter_4.pth')
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_4.pth')  # repaired
    if pointer == 'elsewhere':
        assert any('gone' in str(w.message) and 'this folder' in str(w.message) for w in caught)


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_with_a_warning(finished, tmp_path):
    work = copy_of(finished, tmp_path)
    data = (work / 'iter_4.pth').read_bytes()
    (work / 'iter_4.pth').write_bytes(data[:len(data) // 2])
    with pytest.warns(UserWarning, match=r'skipping incomplete checkpoint\(s\) iter_4\.pth .*resuming from iter_2\.pth'):
        assert resume_point(str(work)) == str(work / 'iter_2.pth')


def test_resume_in_a_moved_folder_with_another_batch_continues_there_and_says_what_changes(finished, tmp_path):
    """The folder was moved from elsewhere (last_checkpoint names a path that is gone); the resumed run
    also uses batch 1 instead of 2: it continues from this folder's iter_4.pth and says the effective
    batch changes."""
    work = copy_of(finished, tmp_path, 'moved')
    (work / 'last_checkpoint').write_text(str(tmp_path / 'original' / 'iter_4.pth'))
    proc = run([sys.executable, 'tools/train.py', *train_args(work, '--resume', options=[
        'train_cfg.max_iters=6', 'train_dataloader.batch_size=1', 'default_hooks.sample_grid.interval=6'])])
    out = proc.stdout + proc.stderr
    assert f'resuming from this folder\'s iter_4.pth ({work / "iter_4.pth"})' in out
    assert 'trained with 1 process(es) x batch 2 x accumulation 1 = 2 image(s) per step with 1 process(es) x batch 1' \
        in out and 'the effective batch changes' in out
    assert (work / 'vico_weights_iter_6.safetensors').exists() and not (work / 'vico_weights_iter_5.safetensors').exists()


def test_resume_with_nothing_to_resume_says_so_and_starts(tmp_path):
    assert resume_point(str(tmp_path)) is None



def test_a_toy_base_run_is_continued_only_with_the_settings_it_was_started_with(tmp_path):
    """Its files (scenes, latents, checkpoints) depend on the seed, the scene count, the batch and the lr:
    a resume with others would mix two trainings. Refused in one line, nothing touched."""
    import argparse

    from mmagic_vico.utils.manifest import read_manifest, write_manifest
    sys.path.insert(0, os.path.join(REPO, 'tools'))
    try:
        import train_toy_base
    finally:
        sys.path.pop(0)
    run_dir = tmp_path / 'toyrun'
    run_dir.mkdir()
    (run_dir / 'data.npz').write_bytes(b'scenes rendered with seed 1')  # a stand-in: refused before it is read
    begun = argparse.Namespace(scenes=8, batch_size=32, lr=5e-4, seed=1)
    write_manifest(str(run_dir), train_toy_base.run_record(begun))
    before = read_manifest(str(run_dir))
    again = run([sys.executable, 'tools/train_toy_base.py', str(run_dir), '--scenes', '8'], check=False)  # seed 0
    assert again.returncode == 1 and 'Traceback' not in again.stderr, again.stderr[-3000:]
    assert 'made with other settings' in again.stderr and 'seed' in again.stderr
    assert sorted(os.listdir(run_dir)) == ['.manifest.json', 'data.npz'] and read_manifest(str(run_dir)) == before
