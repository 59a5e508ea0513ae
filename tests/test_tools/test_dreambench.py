"""tools/dreambench.py: the DreamBench sweep on the tiny default (ViCo, 2 subjects, 2 prompts x 2 images,
2 training iterations), alone, over 2 torchrun processes on gloo, and as 2 tasks of a Slurm job array:
the same images, weights and scores; done jobs skipped; other requests refused (or, with --overwrite,
made again); a job folder in use by a live sweep refused."""
import concurrent.futures
import contextlib
import json
import os
import shutil
import sys

import pytest
import torch
from mmengine import Config

from mmagic_vico.evaluation.evaluator import default_backbones
from mmagic_vico.sweep import read_record, subject_options, write_record
from mmagic_vico.utils.config import load_config
from mmagic_vico.utils.errors import ConflictError
from mmagic_vico.utils.lock import folder_lock

from ..conftest import DREAMBENCH, REPO
from ..helpers.dreambench import small_dreambench
from ..helpers.runs import run

pytestmark = pytest.mark.skipif(not os.path.isdir(DREAMBENCH), reason='the DreamBench photos are not here')

SHORT = {'train_cfg.max_iters': 2, 'default_hooks.checkpoint.interval': 2, 'default_hooks.export.interval': 2,
         'default_hooks.sample_grid.num_inference_steps': 1, 'default_hooks.sample_grid.num_images': 1,
         'default_hooks.sample_grid.height': 64, 'default_hooks.sample_grid.width': 64}
# one thread everywhere: the float rounding (and so the images) is that of the same kernels in every run
ENV = dict(OMP_NUM_THREADS='1', PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))


@pytest.fixture(scope='module')
def setup(tmp_path_factory, tiny_path):
    root = tmp_path_factory.mktemp('sweep')
    config = root / 'sweep.py'
    config.write_text(f"_base_ = ['{REPO}/configs/dreambench/dreambench_tiny.py']\n"
                      f"train_options = dict(vico={SHORT!r})\n"
                      "evaluation = dict(num_images=2, num_inference_steps=2, height=64, width=64, batch_size=2)\n")
    with contextlib.chdir(REPO):
        default_backbones()  # the tiny scorers, built on first use: here, before sweeps run side by side
    return dict(root=root, config=str(config), dreambench=small_dreambench(root / 'dreambench', num_prompts=2))


def sweep(setup, work_dir, *extra, subjects=('dog7', 'teapot'), env=None, check=True):
    return run([sys.executable, 'tools/dreambench.py', setup['config'], '--dreambench', setup['dreambench'],
                '--subjects', *subjects, '--methods', 'vico', '--work-dir', str(work_dir), *extra],
               env=dict(ENV, **(env or {})), check=check)


@pytest.fixture
def sweep_here(setup, capfd, monkeypatch):
    """``sweep`` without a process of its own: tools/dreambench.py's ``main`` in this one (no import, no exit;
    its trainings are still processes of their own), as ``sweep`` runs it: in the repository, one thread (the
    same float rounding, so the same image bytes), its trainings on one thread too. Returns the sweep's and
    its trainings' (stdout, stderr); a refusal is the error ``main`` raises, which tools/dreambench.py prints as
    one message (test_a_job_folder_in_use_by_a_live_sweep_is_refused: from the shell)."""
    from tools.dreambench import main
    monkeypatch.chdir(REPO)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)

    def call(work_dir, *extra, subjects=('dog7', 'teapot'), methods=('vico',), config=None):
        capfd.readouterr()  # only what this call prints
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            main([config or setup['config'], '--dreambench', setup['dreambench'], '--subjects', *subjects,
                  '--methods', *methods, '--work-dir', str(work_dir), *extra])
        finally:
            torch.set_num_threads(threads)
        return capfd.readouterr()

    return call


def refused(call, *texts) -> str:
    """The message of the ConflictError that ``call`` raises (the one message the tool prints), checked to name
    ``texts``."""
    with pytest.raises(ConflictError) as info:
        call()
    message = str(info.value)
    for text in texts:
        assert text in message, message
    return message


def outputs(work_dir) -> dict:
    """Every image's bytes, every record's content, the tables."""
    found = {}
    for folder, _, names in os.walk(work_dir):
        for name in names:
            path = os.path.join(folder, name)
            key = os.path.relpath(path, work_dir)
            if '/images/' in path or key.startswith('subjects') or name == 'dreambench.md':
                found[key] = open(path, 'rb').read()
            elif name == 'scores.json':
                found[key] = json.load(open(path))
            elif name == 'made_by.json':
                record = json.load(open(path))
                found[key] = (record['made_by'], record['weights_sha256'])
    return found


@pytest.fixture(scope='module')
def array(setup):
    """The sweep of test_a_slurm_job_array_writes_the_images_and_scores_of_one_process: tools/slurm_dreambench.sh
    with a stand-in sbatch that runs each array task in turn, then the table job. One process at a time, so it
    runs in the background from the module's first sweep on, `alone` on the other core meanwhile."""
    work_dir, log = setup['root'] / 'array', setup['root'] / 'sbatch.log'
    standin = os.path.join(REPO, 'tests', 'helpers', 'slurm')
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        done = pool.submit(run, ['bash', 'tools/slurm_dreambench.sh', 'gpu', 'table', '2', setup['config'],
                                 '--dreambench', setup['dreambench'], '--subjects', 'dog7', 'teapot', '--methods',
                                 'vico', '--work-dir', str(work_dir)],
                           env=dict(ENV, PATH=standin + os.pathsep + ENV['PATH'], SBATCH_LOG=str(log),
                                    PYTHON=sys.executable))
        yield dict(work_dir=work_dir, log=log, done=done)


@pytest.fixture(scope='module')
def alone(setup, array):
    """One process: dog7 first, then both subjects (dog7's job is skipped); the Slurm array meanwhile."""
    work_dir = setup['root'] / 'alone'
    first = sweep(setup, work_dir, subjects=['dog7'])
    before = outputs(work_dir)
    stamps = {path: os.path.getmtime(work_dir / path) for path in before if path.startswith('vico/dog7/')}
    second = sweep(setup, work_dir)
    return dict(work_dir=work_dir, logs=(first.stderr, second.stderr), first=before, stamps=stamps,
                outputs=outputs(work_dir))


def test_one_process_writes_the_table_and_skips_done_jobs(alone):
    first, second = alone['logs']
    assert 'vico/dog7: training 2 iterations' in first
    assert '1 of 2 job(s) done' in second and 'vico/dog7: training' not in second
    assert 'vico/teapot: training 2 iterations' in second
    work_dir = alone['work_dir']
    # dog7's images, their manifest and contact sheet, scores and record: untouched by the second run
    assert len(alone['stamps']) == 8
    assert all(os.path.getmtime(work_dir / path) == stamp for path, stamp in alone['stamps'].items())
    out = alone['outputs']
    assert sorted(p for p in out if '/images/' in p) == [f'vico/{s}/images/{name}' for s in ('dog7', 'teapot') for name in
                                                          ['.manifest.json']  # what made them
                                                          + [f'{p:02d}_{k:02d}.png' for p in range(2) for k in range(2)]
                                                          + ['grid.png']]  # the images and their contact sheet
    manifest = json.loads(out['vico/teapot/images/.manifest.json'])
    assert manifest['weights_sha256'] == out['vico/teapot/train/made_by.json'][1]
    assert manifest['sampling']['num_inference_steps'] == 2 and manifest['model']['type'] == 'ViCo'
    table = out['dreambench.md'].decode()
    assert table.startswith('| method | CLIP-T | CLIP-I | DINO |') and '| vico |' in table
    assert '| vico |' in out['subjects/teapot.md'].decode()
    made_by, _ = out['vico/teapot/train/made_by.json']
    assert made_by['class_noun'] == 'teapot' and made_by['initialize_token'] == 'teapot' and made_by['steps'] == 2
    assert out['vico/teapot/scores.json']['scores']['images'] == 4
    report = json.load(open(work_dir / 'dreambench.json'))
    assert set(report['methods']['vico']['subjects']) == {'dog7', 'teapot'}
    assert report['methods']['vico']['subjects']['dog7'] != report['methods']['vico']['subjects']['teapot']
    config = Config.fromfile(str(work_dir / 'vico' / 'teapot' / 'config.py'))  # what trained it
    assert config.train_dataloader.dataset.concept_dir == 'teapot' and config.model.initialize_token == 'teapot'


def test_two_torchrun_processes_write_the_images_and_scores_of_one(setup, alone):
    work_dir = setup['root'] / 'torchrun'
    proc = run(['bash', 'tools/dist_dreambench.sh', '2', setup['config'], '--dreambench', setup['dreambench'],
                '--subjects', 'dog7', 'teapot', '--methods', 'vico', '--work-dir', str(work_dir)],
               env=dict(ENV, PORT='29541', PYTHON=sys.executable))
    log = proc.stdout + proc.stderr
    assert '[rank 0/2] vico/dog7: training' in log and '[rank 1/2] vico/teapot: training' in log
    for rank in (0, 1):  # 4 calls of 2 images (one prompt each), shared: every rank made images of both subjects
        assert f'[rank {rank}/2] vico/dog7: generating 2 image(s)' in log
        assert f'[rank {rank}/2] vico/teapot: generating 2 image(s)' in log
    assert outputs(work_dir) == alone['outputs']


def test_a_slurm_job_array_writes_the_images_and_scores_of_one_process(array, alone):
    """tools/slurm_dreambench.sh with a stand-in sbatch that runs each array task in turn, then the table job
    (the `array` fixture, begun with the module)."""
    array['done'].result()
    work_dir, log = array['work_dir'], array['log']
    submitted = log.read_text().splitlines()
    assert '--array=0-1' in submitted[0] and '--gres=gpu:1' in submitted[0]
    assert '--dependency=afterok:1001' in submitted[1]  # the table job waits for the array
    task0, task1, table = log.with_suffix('.log.out').read_text().split('@@sbatch ')[1:]
    assert 'vico/dog7: training' in task0 and 'vico/teapot: ' not in task0  # whole jobs, each task its share
    assert 'not scored yet' in task0
    assert 'vico/teapot: training' in task1 and 'vico/dog7: ' not in task1
    assert '2 of 2 job(s) done' in table and '| vico |' in table
    assert outputs(work_dir) == alone['outputs']


def test_other_settings_are_refused_and_removed_outputs_remade(setup, alone, tmp_path, sweep_here):
    work_dir = tmp_path / 'copy'
    shutil.copytree(alone['work_dir'], work_dir)
    for flags, message in ((['--steps', '3'], 'num_inference_steps: 2 there, 3 now'),
                           (['--seed', '1'], 'seed: 0 there, 1 now')):
        refused(lambda: sweep_here(work_dir, *flags), message, 'Nothing was changed')
    assert outputs(work_dir) == alone['outputs']
    os.remove(work_dir / 'vico' / 'teapot' / 'images' / '01_00.png')
    os.remove(work_dir / 'vico' / 'teapot' / 'scores.json')
    _, err = sweep_here(work_dir)
    assert '1 of 2 job(s) done' in err and ': training' not in err
    assert 'vico/teapot: generating 1 image(s)' in err
    assert outputs(work_dir) == alone['outputs']
    # a training killed before its record: not resumed into another config; resumed into its own
    teapot = work_dir / 'vico' / 'teapot'
    shutil.rmtree(teapot / 'images')
    os.remove(teapot / 'scores.json')
    os.remove(teapot / 'train' / 'made_by.json')
    longer = tmp_path / 'longer.py'
    longer.write_text(open(setup['config']).read().replace("'train_cfg.max_iters': 2", "'train_cfg.max_iters': 3"))
    refused(lambda: sweep_here(work_dir, subjects=['teapot'], config=str(longer)),
            'unfinished training of another config')
    out, err = sweep_here(work_dir)
    # resumed from the folder's own newest checkpoint (tools/train.py --resume: issue 13's resume_point)
    assert 'vico/teapot: training 2 iterations' in err
    assert 'resumed epoch: 0, iter: 2' in out + err
    assert outputs(work_dir) == alone['outputs']


def test_images_of_other_settings_are_not_scored_and_overwrite_makes_them_again(setup, alone, tmp_path, sweep_here):
    """A job whose scores are gone keeps its images only for the settings that made them (their manifest);
    --overwrite removes what other settings made, names it, and makes it again."""
    work_dir = tmp_path / 'copy'
    shutil.copytree(alone['work_dir'], work_dir)
    os.remove(work_dir / 'vico' / 'teapot' / 'scores.json')
    refused(lambda: sweep_here(work_dir, '--steps', '3', subjects=['teapot']),
            'DreamBench images in', 'num_inference_steps: 2 -> 3', '--overwrite')
    assert sorted(os.listdir(work_dir / 'vico' / 'teapot' / 'images')) == sorted(
        os.listdir(alone['work_dir'] / 'vico' / 'teapot' / 'images'))  # nothing changed
    with pytest.warns(UserWarning, match='--overwrite: removed'):
        _, err = sweep_here(work_dir, '--steps', '3', '--overwrite', subjects=['teapot'])
    assert 'vico/teapot: training 2 iterations' in err
    manifest = json.loads((work_dir / 'vico' / 'teapot' / 'images' / '.manifest.json').read_text())
    assert manifest['sampling']['num_inference_steps'] == 3
    assert json.load(open(work_dir / 'vico' / 'teapot' / 'scores.json'))['made_by']['num_inference_steps'] == 3
    _, err = sweep_here(work_dir, '--steps', '3', subjects=['teapot'])  # done: skipped
    assert '1 of 1 job(s) done' in err and ': training' not in err and ': generating' not in err


def test_a_job_folder_in_use_by_a_live_sweep_is_refused(setup, alone, tmp_path, sweep_here):
    """From the shell (the refusal is one message, no traceback), then in this process: the locks it took
    were released, and the sweep goes on once the folder is free."""
    work_dir = tmp_path / 'busy'
    shutil.copytree(alone['work_dir'], work_dir)
    with folder_lock(str(work_dir / 'vico' / 'teapot'), 'a DreamBench sweep'):
        proc = sweep(setup, work_dir, check=False)
        assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
        assert 'is in use by a DreamBench sweep' in proc.stderr and f'pid {os.getpid()}' in proc.stderr
        assert not (work_dir / 'vico' / 'dog7' / '.lock').exists()  # the locks it took are released
        refused(lambda: sweep_here(work_dir), 'is in use by a DreamBench sweep', f'pid {os.getpid()}')
        assert not (work_dir / 'vico' / 'dog7' / '.lock').exists()
    assert '2 of 2 job(s) done' in sweep_here(work_dir)[1]


def test_subject_fields_reach_every_method_config(tiny_path, tmp_path):
    configs = {name: os.path.join(REPO, 'configs', folder, f'{name}_tiny.py') for folder, name in (
        ('vico', 'vico'), ('textual_inversion', 'textual_inversion'), ('dreambooth', 'dreambooth'),
        ('dreambooth', 'dreambooth_lora'))}
    for name, path in configs.items():
        base = load_config(path)
        options = subject_options(base, DREAMBENCH, 'bear_plushie', 'stuffed animal', str(tmp_path / 'class'),
                                  {'stuffed animal': 'plush'})
        cfg = load_config(path, options)  # every option names a key the config has
        dataset = cfg.train_dataloader.dataset
        assert (dataset.data_root, dataset.concept_dir) == (os.path.abspath(DREAMBENCH), 'bear_plushie')
        if name.startswith('dreambooth'):
            class_dir = str(tmp_path / 'class' / 'stuffed_animal')
            assert dataset.caption.format('sks') == 'a photo of sks stuffed animal'
            assert cfg.model.class_prompt == 'a photo of stuffed animal'
            assert dataset.class_dir == cfg.default_hooks.class_images.class_dir == class_dir
            assert cfg.default_hooks.sample_grid.prompts == ['a photo of sks stuffed animal']
        else:
            assert cfg.model.initialize_token == 'plush'
    with pytest.raises(ValueError, match="class of bear_plushie is 'stuffed animal'.*initialize_tokens="):
        subject_options(load_config(configs['vico']), DREAMBENCH, 'bear_plushie', 'stuffed animal', 'x', {})


def test_a_record_of_another_request_is_refused_by_name(tmp_path):
    path = str(tmp_path / 'made_by.json')
    assert read_record(path, dict(steps=2), 'it') is None
    write_record(path, dict(steps=2, subject='dog7'), weights_sha256='abc')
    assert read_record(path, dict(steps=2, subject='dog7'), 'it')['weights_sha256'] == 'abc'
    with pytest.raises(ConflictError, match=r"steps: 2 there, 400 now.*delete the folder X"):
        read_record(path, dict(steps=400, subject='dog7'), 'the folder X')
    (tmp_path / 'made_by.json').write_text('{"half')
    with pytest.raises(ConflictError, match='is not a record of this sweep'):
        read_record(path, dict(steps=2), 'it')


def test_unknown_subjects_methods_and_missing_photos_fail_before_any_work(setup, tmp_path, capsys):
    from tools.dreambench import main
    common = [setup['config'], '--dreambench', setup['dreambench'], '--work-dir', str(tmp_path / 'out')]
    with pytest.raises(ValueError, match=r"--subjects \['unicorn'\] are not in"):
        main([*common, '--subjects', 'unicorn'])
    with pytest.raises(ValueError, match=r"has no photos of \[.*'bear_plushie'.*name subjects it has: dog7 teapot"):
        main([*common, '--subjects', 'all'])
    with pytest.raises(SystemExit):
        main([*common, '--subjects', 'dog7', '--methods', 'vico', 'dall_e'])
    assert "--methods ['dall_e'] are not in" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r'evaluation\.num_images=0 must be a positive integer'):
        main([*common, '--subjects', 'dog7', '--cfg-options', 'evaluation.num_images=0'])  # the flags' types too
    assert not (tmp_path / 'out').exists()


def test_the_base_row_trains_nothing_and_prompts_the_class_alone(setup, tmp_path, tiny_path, sweep_here):
    """DreamBench's unpersonalized row: the base model as it is, its prompts without a unique token."""
    import numpy as np
    from PIL import Image

    from mmagic_vico.evaluation.batching import image_seed
    from mmagic_vico.evaluation.dreambench import read_dreambench
    from mmagic_vico.models import StableDiffusion
    work_dir = tmp_path / 'base'
    _, err = sweep_here(work_dir, subjects=['dog7'], methods=['base'])
    assert '0 to train' in err and not os.path.exists(work_dir / 'base' / 'dog7' / 'train')
    assert '| base |' in (work_dir / 'dreambench.md').read_text()
    grid = Image.open(work_dir / 'subjects' / 'dog7.png').convert('RGB')  # a row per method, a tile per prompt
    first, second = (Image.open(work_dir / 'base' / 'dog7' / 'images' / f'0{p}_00.png') for p in (0, 1))
    assert np.array_equal(np.asarray(grid.crop((2, 2, 66, 66))), np.asarray(first))
    assert np.array_equal(np.asarray(grid.crop((68, 2, 132, 66))), np.asarray(second))
    prompt = read_dreambench(setup['dreambench']).prompts('dog7', None)[0]
    assert prompt.startswith('a dog ') and 'sks' not in prompt
    model = StableDiffusion(tiny_path).eval()
    made = np.asarray(Image.open(work_dir / 'base' / 'dog7' / 'images' / '00_00.png')).astype(int)

    def difference(text):  # from the sample of text with the sweep's seed (rounding: other threads, batch)
        image = model.infer([text], seed=[image_seed(0, 0, 0)], num_inference_steps=2, height=64, width=64,
                            show_progress=False)['samples'][0]
        return np.abs(np.asarray(image).astype(int) - made).max()

    with_token = read_dreambench(setup['dreambench']).prompts('dog7', 'sks')[0]
    assert difference(prompt) <= 2 < difference(with_token)
