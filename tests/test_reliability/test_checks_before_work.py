"""Checks before work: what can be checked from the config and the flags fails before the model loads
(before any iteration, any sampling step, any file), naming the config key or flag, the value and the fix."""
import contextlib
import json
import os
import tempfile

import pytest
import torch
from safetensors.torch import save_file

from mmagic_vico.utils import checks
from mmagic_vico.utils.errors import InvalidValueError, MissingFileError, UserError

from ..conftest import REPO, TINY_CONFIG

TEMPLATES = os.path.join(REPO, 'data', 'vico', 'imagenet_templates_small.txt')
CONCEPT = os.path.join(REPO, 'data', 'vico', 'tiny_toy')


def fails(call, error, *texts):
    with pytest.raises(error) as info:
        call()
    for text in texts:
        assert text in str(info.value), str(info.value)
    return info.value


def train_cfg(*options):
    from tools.train import build_cfg, parse_args
    from mmagic_vico.utils import register_all_modules
    register_all_modules()
    return build_cfg(parse_args([TINY_CONFIG, '--work-dir', '/nonexistent/never-written', '--cfg-options', *options]))


def preflight(*options):
    from mmagic_vico.engine.preflight import check_training_inputs
    check_training_inputs(train_cfg(*options))


# ------------------------------------------------------------------ values: NaN, infinity, words, bools, seeds
@pytest.mark.parametrize('option, texts', [
    ('model.reg_loss_weight=nan', ['model.reg_loss_weight=nan', 'not a finite number']),
    ('model.reg_loss_weight=inf', ['model.reg_loss_weight=inf', 'not a finite number']),
    ('optim_wrapper.optimizer.lr=nan', ['optim_wrapper.optimizer.lr=nan', 'not a finite number']),
    ('model.reg_loss_weight=abc', ["model.reg_loss_weight='abc'", 'give a number', '0.0005']),
    ('default_hooks.sample_grid.guidance_scale=high', ["guidance_scale='high'", 'give a number', '7.5']),
    ('model.fast_path=yes', ["model.fast_path='yes'", 'True or False']),
    ('randomness.seed=-1', ['randomness.seed=-1', 'a seed is an integer from 0 to 4294967295']),
    ('train_cfg.max_iters=1.5', ['train_cfg.max_iters=1.5', 'positive number of iterations']),
], ids=['nan_weight', 'inf_weight', 'nan_lr', 'word_for_a_number', 'word_for_a_hook_number', 'word_for_a_bool',
        'negative_seed', 'fractional_iterations'])
def test_config_values_of_the_wrong_kind_fail_when_the_config_loads(tiny_cfg, option, texts):
    fails(lambda: train_cfg(option), InvalidValueError, *texts)
    assert not os.path.exists('/nonexistent/never-written')


def test_nan_weight_in_python_fails_at_build_not_as_a_nan_loss(tiny_cfg):
    from mmagic_vico.registry import MODELS
    fails(lambda: MODELS.build(tiny_cfg.model | dict(reg_loss_weight=float('nan'))), InvalidValueError,
          'reg_loss_weight=nan', 'finite number >= 0')


def test_a_number_given_for_a_name_is_the_name(tiny_cfg):
    assert train_cfg('concept_dir=2024').train_dataloader.dataset.concept_dir == '2024'


def test_a_config_with_a_syntax_error_names_its_line(tmp_path):
    from mmagic_vico.utils.config import load_config
    bad = tmp_path / 'mine.py'
    bad.write_text("_base_ = ['x.py']\nmodel = dict(placeholder='S*'\n")
    fails(lambda: load_config(str(bad)), InvalidValueError, 'mine.py', 'not valid Python', 'line')


def test_training_a_config_that_trains_nothing_says_what_to_do(tiny_cfg):
    from tools.train import build_cfg, parse_args
    config = os.path.join(REPO, 'configs', 'aesthetic_gradients', 'aesthetic_gradients_tiny.py')
    fails(lambda: build_cfg(parse_args([config])), InvalidValueError, 'not a training config',
          'make_aesthetic_embedding.py')


# ------------------------------------------------------------------ sample grid, exports, dataset: named by key
@pytest.mark.parametrize('option, texts', [
    ('default_hooks.sample_grid.reference=data/vico/tiny_toy/00.pgn',
     ["default_hooks.sample_grid.reference='data/vico/tiny_toy/00.pgn' does not exist", 'leave reference out']),
    ('default_hooks.sample_grid.num_images=0', ['default_hooks.sample_grid.num_images=0', 'positive integer']),
    ('default_hooks.sample_grid.num_inference_steps=0', ['default_hooks.sample_grid.num_inference_steps=0']),
    ('default_hooks.sample_grid.height=100', ['default_hooks.sample_grid.height=100', 'multiple of 8']),
    ('default_hooks.sample_grid.guidance_scale=-1', ['default_hooks.sample_grid.guidance_scale=-1', '>= 0']),
    ('default_hooks.sample_grid.seed=99999999999', ['default_hooks.sample_grid.seed=99999999999', 'a seed']),
    ('default_hooks.sample_grid.prompts=[a {name} photo]', ["default_hooks.sample_grid.prompts='a {name} photo'",
                                                            "['{name}']", 'only field']),
    ('default_hooks.sample_grid.interval=0', ['default_hooks.sample_grid.interval=0', 'positive']),
    ('default_hooks.sample_grid.interval=-1', ['default_hooks.sample_grid.interval=-1', 'positive integer']),
    ('default_hooks.checkpoint.interval=0', ['default_hooks.checkpoint.interval=0', '-1: never']),
    ('train_dataloader.num_workers=-1', ['train_dataloader.num_workers=-1', 'integer >= 0']),
    ('optim_wrapper.optimizer.weight_decay=-1', ['optim_wrapper.optimizer.weight_decay=-1', '>= 0']),
    ('optim_wrapper.optimizer.betas=[0.9,1.5]', ['optim_wrapper.optimizer.betas.1=1.5', '[0, 1)']),
    ('train_dataloader.dataset.flip_prob=2', ['train_dataloader.dataset.flip_prob=2', 'between 0 and 1']),
    ('default_hooks.export.interval=0', ['default_hooks.export.interval=0']),
    ('placeholder=None', ['train_dataloader.dataset.placeholder=None', 'e.g. "S*"']),
    ('train_dataloader.dataset.caption=a {name} of {}', ["caption='a {name} of {}'", "['{name}']"]),
], ids=['reference_typo', 'zero_images', 'zero_steps', 'height_100', 'negative_guidance', 'seed_too_large',
        'prompt_field', 'zero_interval', 'never_interval_of_a_grid', 'zero_checkpoint_interval', 'negative_workers',
        'negative_weight_decay', 'beta_above_1', 'flip_prob_2', 'zero_export_interval', 'placeholder_none',
        'caption_field'])
def test_a_bad_setting_fails_before_the_model_loads_naming_its_key(tiny_cfg, option, texts):
    fails(lambda: preflight(option), UserError, *texts)


def templates_file(tmp_path, content: bytes):
    path = tmp_path / 'templates.txt'
    path.write_bytes(content)
    return f'train_dataloader.dataset.templates={path}'


def test_templates_with_an_unknown_field_or_not_utf8_fail_before_training(tiny_cfg, tmp_path):
    fails(lambda: preflight(templates_file(tmp_path, b'a photo of {}\na {} on {place}\n')), InvalidValueError,
          'train_dataloader.dataset', 'templates.txt: template 2=', "['{place}']", 'only field')
    fails(lambda: preflight(templates_file(tmp_path, 'a photo of {} caf\u00e9\n'.encode('latin-1'))), InvalidValueError,
          'templates.txt', 'not UTF-8', 'byte 0xe9 on line 1', 'save it as UTF-8')
    preflight(templates_file(tmp_path, '\ufeffa photo of {} caf\u00e9\n'.encode('utf-8')))  # UTF-8 with a BOM: fine


def test_a_bad_sample_grid_reference_stops_train_before_anything_is_written(tiny_cfg, tmp_path):
    from tools.train import main
    work = tmp_path / 'run'
    fails(lambda: main([TINY_CONFIG, '--work-dir', str(work), '--cfg-options',
                        'default_hooks.sample_grid.reference=nope.png']), MissingFileError,
          "default_hooks.sample_grid.reference='nope.png' does not exist")
    assert not work.exists()


# ------------------------------------------------------------------ outputs: of the right kind, writable
@contextlib.contextmanager
def read_only_folder():
    """A folder this process cannot write to (as root: checked with the effective uid of nobody)."""
    folder = tempfile.mkdtemp()
    os.chmod(folder, 0o555)
    try:
        if os.geteuid() == 0:
            os.seteuid(65534)
        yield folder
    finally:
        if os.getuid() == 0:
            os.seteuid(0)
        os.chmod(folder, 0o755)
        os.rmdir(folder)


def test_output_paths_of_the_wrong_kind_or_read_only(tmp_path):
    a_file = tmp_path / 'file'
    a_file.write_text('x')
    fails(lambda: checks.output_dir(str(a_file), '--out-dir'), InvalidValueError, '--out-dir', 'is a file')
    fails(lambda: checks.output_dir(str(a_file / 'sub'), '--work-dir'), InvalidValueError, 'cannot be made',
          'is a file')
    fails(lambda: checks.output_file(str(tmp_path), 'OUT'), InvalidValueError, 'OUT', 'is a folder')
    with read_only_folder() as folder:
        fails(lambda: checks.output_dir(os.path.join(folder, 'run'), '--work-dir'), InvalidValueError,
              '--work-dir', 'not writable', 'read-only')
        fails(lambda: checks.output_file(os.path.join(folder, 'e.safetensors'), 'OUT'), InvalidValueError,
              'not writable')
    checks.output_dir(str(tmp_path / 'new' / 'deeper'), '--out-dir')  # to be made: fine
    assert not (tmp_path / 'new').exists()


def test_train_into_a_file_or_a_read_only_folder_fails_before_training(tiny_cfg, tmp_path):
    from tools.train import main
    a_file = tmp_path / 'file'
    a_file.write_text('x')
    fails(lambda: main([TINY_CONFIG, '--work-dir', str(a_file)]), InvalidValueError, '--work-dir', 'is a file')
    with read_only_folder() as folder:
        fails(lambda: main([TINY_CONFIG, '--work-dir', os.path.join(folder, 'run')]), InvalidValueError,
              'not writable')


def test_infer_checks_its_output_folder_before_sampling(tmp_path, monkeypatch, tiny_cfg):
    from tools import infer
    monkeypatch.setattr(infer, 'MODELS', None)  # building (or even looking up) a model here would fail otherwise
    a_file = tmp_path / 'samples'
    a_file.write_text('an earlier file, not a folder')
    fails(lambda: infer.main([TINY_CONFIG, '--out-dir', str(a_file)]), InvalidValueError, '--out-dir', 'is a file')


@pytest.mark.parametrize('flags, texts', [
    (['--image-attention-scale', 'nan'], ['--image-attention-scale', "'nan' is not a finite number >= 0"]),
    (['--image-attention-scale', 'inf'], ['--image-attention-scale', "'inf' is not a finite number"]),
    (['--eta', '2'], ['--eta', "'2' is not a finite number between 0 and 1"]),
    (['--seed', '-1'], ['--seed', "'-1' is not a seed"]),
    (['--seed', str(2 ** 40)], ['--seed', 'is not a seed']),
    (['--aesthetic-lr', 'nan'], ['--aesthetic-lr']),
    (['--aesthetic-steps', '-2'], ['--aesthetic-steps', "'-2' is not an integer >= 0"]),
    (['--device', 'cuda:99'], ['--device', "'cuda:99' is not available"]),
], ids=['nan_scale', 'inf_scale', 'eta_2', 'negative_seed', 'huge_seed', 'nan_aesthetic_lr', 'negative_aesthetic_steps',
        'missing_device'])
def test_bad_infer_flags_are_refused_by_the_parser(capsys, flags, texts):
    from tools.infer import parse_args
    with pytest.raises(SystemExit) as info:
        parse_args([TINY_CONFIG, *flags])
    err = capsys.readouterr().err
    assert info.value.code == 2
    for text in texts:
        assert text in err, err


def test_make_aesthetic_embedding_refuses_a_zero_batch(capsys):
    from tools.make_aesthetic_embedding import main
    with pytest.raises(SystemExit) as info:
        main([CONCEPT, 'out.safetensors', '--batch-size', '0'])
    assert info.value.code == 2 and "--batch-size: '0' is not a positive integer" in capsys.readouterr().err


# ------------------------------------------------------------------ Aesthetic Gradients: flags that go together, CLIP
@pytest.fixture(scope='module')
def clip_and_embedding(tmp_path_factory, tiny_path):
    from mmagic_vico.models.aesthetic_gradients import make_aesthetic_embedding
    from mmagic_vico.models.tiny_sd import build_tiny_clip
    folder = tmp_path_factory.mktemp('aesthetic')
    clip = build_tiny_clip(str(folder / 'clip'), tiny_path)
    embedding = str(folder / 'toy.safetensors')
    make_aesthetic_embedding(CONCEPT, clip, embedding)
    return clip, embedding


def infer_before_the_model(monkeypatch, *flags):
    from tools import infer
    monkeypatch.setattr(infer.MODELS, 'build', None)  # the checks must all come before the model is built
    return lambda: infer.main([TINY_CONFIG, *flags])


def test_aesthetic_embedding_without_steps_and_steps_without_embedding(monkeypatch, clip_and_embedding, tiny_cfg):
    _, embedding = clip_and_embedding
    fails(infer_before_the_model(monkeypatch, '--aesthetic-embedding', embedding), InvalidValueError,
          '--aesthetic-embedding', 'does nothing without --aesthetic-steps', '--aesthetic-steps 10')
    fails(infer_before_the_model(monkeypatch, '--aesthetic-steps', '5'), InvalidValueError,
          '--aesthetic-steps 5 needs --aesthetic-embedding')


def test_aesthetic_embedding_whose_clip_is_gone_or_of_another_width(monkeypatch, clip_and_embedding, tmp_path,
                                                                    tiny_cfg):
    clip, embedding = clip_and_embedding
    gone = dict(aesthetic_embedding=torch.zeros(1, 32))
    save_file(gone, str(tmp_path / 'gone.safetensors'), metadata={'clip_model': str(tmp_path / 'moved_clip')})
    fails(infer_before_the_model(monkeypatch, '--aesthetic-embedding', str(tmp_path / 'gone.safetensors'),
                                 '--aesthetic-steps', '2'), MissingFileError,
          'moved_clip', 'recorded in', '--aesthetic-clip DIR')
    save_file(dict(aesthetic_embedding=torch.zeros(1, 768)), str(tmp_path / 'wide.safetensors'),
              metadata={'clip_model': clip})  # made with SD 1.5's CLIP, used with the tiny one
    fails(infer_before_the_model(monkeypatch, '--aesthetic-embedding', str(tmp_path / 'wide.safetensors'),
                                 '--aesthetic-steps', '2'), InvalidValueError, '768 wide', 'projects to 32',
          '--aesthetic-clip')
    other = tmp_path / 'other_clip'
    os.makedirs(other)
    config = json.load(open(os.path.join(clip, 'config.json')))
    config['text_config']['hidden_size'] = 64  # a CLIP whose text tower is not the tiny SD's text encoder
    json.dump(config, open(other / 'config.json', 'w'))
    fails(infer_before_the_model(monkeypatch, '--aesthetic-embedding', embedding, '--aesthetic-steps', '2',
                                 '--aesthetic-clip', str(other)), InvalidValueError, 'text tower 64 wide',
          "text encoder is 32 wide")


def test_aesthetic_checks_hold_in_python_too(clip_and_embedding, tiny_cfg, tiny_path, tmp_path):
    from mmagic_vico.registry import MODELS
    model = MODELS.build(tiny_cfg.model)
    save_file(dict(aesthetic_embedding=torch.zeros(1, 7)), str(tmp_path / 'odd.safetensors'),
              metadata={'clip_model': clip_and_embedding[0]})
    fails(lambda: model.infer('a photo of S*', image_cross_attention_scale=0, aesthetic_steps=1, height=64, width=64,
                              num_inference_steps=1, aesthetic_embedding=str(tmp_path / 'odd.safetensors'),
                              show_progress=False), InvalidValueError, '7 wide', 'projects to 32')
    fails(lambda: model.infer('a photo of S*', 'x.png', image_cross_attention_scale=float('nan')), InvalidValueError,
          'image_cross_attention_scale=nan')
    with pytest.warns(UserWarning, match='aesthetic_embedding is ignored with aesthetic_steps=0'):
        model.infer('a photo of S*', image_cross_attention_scale=0, height=64, width=64, num_inference_steps=1,
                    aesthetic_embedding=clip_and_embedding[1], show_progress=False)


# ------------------------------------------------------------------ resume from a named checkpoint
def test_resume_from_a_missing_or_truncated_checkpoint_fails_before_the_model_loads(tiny_cfg, tmp_path):
    from tools.train import build_cfg, parse_args
    fails(lambda: build_cfg(parse_args([TINY_CONFIG, '--resume', str(tmp_path / 'iter_9.pth')])), MissingFileError,
          'iter_9.pth', 'does not exist', '--resume alone')
    torch.save({'state_dict': {'w': torch.zeros(1000)}}, tmp_path / 'iter_4.pth')
    (tmp_path / 'cut.pth').write_bytes((tmp_path / 'iter_4.pth').read_bytes()[:1500])
    fails(lambda: build_cfg(parse_args([TINY_CONFIG, '--resume', str(tmp_path / 'cut.pth')])), InvalidValueError,
          'cut.pth', 'truncated', 'earlier iter_N.pth')


# ------------------------------------------------------------------ --cfg-options reach the config as written
def test_cfg_options_keep_the_spaces_of_text_and_refuse_malformed_values(capsys):
    """mmengine's DictAction drops every space: class_prompt="a photo of cat" trained as "aphotoofcat"."""
    from tools.train import parse_args
    args = parse_args([TINY_CONFIG, '--cfg-options', 'model.placeholder=<sks>', 'optim_wrapper.optimizer.lr=5e-3',
                       'default_hooks.sample_grid.prompts=[a photo of {}, a {} in the snow]',
                       'train_dataloader.dataset.caption="a photo of {}, a toy"', 'model.frozen_dtype=None'])
    assert args.cfg_options == {'model.placeholder': '<sks>', 'optim_wrapper.optimizer.lr': 0.005,
                                'default_hooks.sample_grid.prompts': ['a photo of {}', 'a {} in the snow'],
                                'train_dataloader.dataset.caption': 'a photo of {}, a toy', 'model.frozen_dtype': None}
    with pytest.raises(SystemExit) as info:
        parse_args([TINY_CONFIG, '--cfg-options', 'default_hooks.sample_grid.prompts=[a photo of {}'])
    assert info.value.code == 2 and "unbalanced brackets in '[a photo of {}'" in capsys.readouterr().err


def test_launcher_pytorch_without_torchrun_says_how_to_start(tiny_cfg, monkeypatch):
    from tools.train import build_cfg, parse_args
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    fails(lambda: build_cfg(parse_args([TINY_CONFIG, '--launcher', 'pytorch'])), InvalidValueError,
          '--launcher pytorch', "'RANK'", 'tools/dist_train.sh')


def test_a_bad_frozen_dtype_fails_before_stable_diffusion_loads(tiny_cfg, monkeypatch):
    from mmagic_vico.models import personalized_sd
    from mmagic_vico.registry import MODELS
    monkeypatch.setattr(personalized_sd, 'load_stable_diffusion', None)  # loading would be a TypeError
    fails(lambda: MODELS.build(tiny_cfg.model | dict(frozen_dtype='fp8')), InvalidValueError, "frozen_dtype='fp8'")
