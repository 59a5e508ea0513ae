"""The catalogue of bad inputs (docs/reliability.md lists every case with the message a user sees).

Each case gives a real bad input to the real code and checks the answer: the exception type (or the
warning), and that the message names the input and says what to do, before any work is done or any
file overwritten. Cases already covered elsewhere are listed in docs/reliability.md with their tests.
"""
import errno
import os
import re
import warnings

import numpy as np
import pytest
import torch
from mmengine import Config
from PIL import Image

from mmagic_vico.models.weights import save_weights_file
from mmagic_vico.registry import MODELS

from ..conftest import REPO, TINY_CONFIG

TEMPLATES = os.path.join(REPO, 'data', 'vico', 'imagenet_templates_small.txt')
PIPELINE = [dict(type='LoadConceptImage'), dict(type='PackConceptImage')]  # the image as read, unresized
FAST = dict(height=64, width=64, num_inference_steps=1, show_progress=False)


def says(message, *patterns):
    """Every pattern (the input, the fix) is in the message."""
    for pattern in patterns:
        assert re.search(pattern, str(message)), f'{pattern!r} not in: {message}'


def fails(call, error, *patterns):
    with pytest.raises(error) as info:
        call()
    says(info.value, *patterns)
    return info.value


def warns(call, *patterns):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        result = call()
    text = ' | '.join(str(w.message) for w in caught)
    says(text, *patterns)
    return result


@pytest.fixture(scope='module')
def model(tiny_cfg, tiny_path):
    torch.manual_seed(0)
    return MODELS.build(tiny_cfg.model)


@pytest.fixture(scope='module')
def photo():
    return os.path.join(REPO, 'data', 'vico', 'tiny_toy', sorted(os.listdir(os.path.join(REPO, 'data', 'vico',
                                                                                         'tiny_toy')))[0])


# ------------------------------------------------------------------ concept photos
def concept(tmp_path, *extra, good=2):
    """A concept folder: ``good`` ordinary photos plus ``extra`` (name, writer) files."""
    folder = tmp_path / 'concept'
    folder.mkdir()
    for i in range(good):
        Image.new('RGB', (96, 80), (40 * i, 90, 200)).save(folder / f'good{i}.png')
    for name, write in extra:
        write(folder / name)
    return folder


def dataset(folder, **kw):
    from mmagic_vico.datasets import ViCoConceptDataset
    from mmagic_vico.utils import register_all_modules
    register_all_modules()
    return ViCoConceptDataset(str(folder.parent), folder.name, 'S*', templates=TEMPLATES, pipeline=PIPELINE, **kw)


def bomb(path):  # 182 million pixels in 22 kB: over PIL's decompression-bomb limit
    Image.new('1', (14000, 13000)).save(path)


def truncated(path):
    Image.new('RGB', (64, 64), (1, 2, 3)).save(path)
    path.write_bytes(path.read_bytes()[:60])


@pytest.mark.parametrize('name, write, patterns', [
    ('IMG_0001.heic', lambda p: p.write_bytes(b'\x00\x00\x00\x18ftypheic'), [r'IMG_0001\.heic', 'convert', 'JPEG']),
    ('broken.jpg', lambda p: p.write_bytes(b'\xff\xd8\xff not a jpeg'), [r'broken\.jpg', 're-save it as PNG or JPEG']),
    ('cut.png', truncated, [r'cut\.png', 'truncated', 're-save']),
    ('bomb.png', bomb, [r'bomb\.png', 'too large to open safely', 'downscale']),
    ('tiny.png', lambda p: Image.new('RGB', (40, 30)).save(p), [r'tiny\.png \(40x30\)', 'blurry', '512 px']),
    ('huge.png', lambda p: Image.new('L', (8200, 80)).save(p), [r'huge\.png \(8200x80\)', 'downscale']),
], ids=['non_image_heic', 'corrupt_jpeg', 'truncated_png', 'decompression_bomb', 'tiny_under_64px', 'huge_over_8k'])
def test_odd_file_among_good_photos_is_named_in_a_warning(tmp_path, name, write, patterns):
    folder = concept(tmp_path, (name, write))
    ds = warns(lambda: dataset(folder), *patterns)
    usable = name in ('tiny.png', 'huge.png')  # decided: odd sizes train (with the warning), broken files are skipped
    assert len(ds) == 2 + usable and (str(folder / name) in ds.images) == usable


def test_only_unopenable_photos_fail_before_training(tmp_path):
    folder = concept(tmp_path, ('bomb.png', bomb), good=0)
    fails(lambda: dataset(folder), FileNotFoundError, re.escape(str(folder)), r'bomb\.png', 'downscale',
          'Put 4-7 photos')


@pytest.mark.parametrize('name, make, expected', [
    ('cmyk.jpg', lambda: Image.new('CMYK', (80, 72), (0, 255, 255, 0)), (255, 0, 0)),
    ('deep.png', lambda: Image.fromarray(np.full((72, 80), 32768, dtype='<u2')), (128, 128, 128)),
    ('palette.png', lambda: _palette(), (255, 255, 255)),  # the transparent index: composited on white
    ('alpha.png', lambda: Image.new('RGBA', (80, 72), (0, 0, 255, 0)), (255, 255, 255)),
], ids=['cmyk_jpeg', '16bit_png', 'palette_transparency', 'rgba'])
def test_photo_of_any_mode_trains_as_8bit_rgb(tmp_path, name, make, expected):
    folder = concept(tmp_path, (name, lambda p: make().save(p)), good=0)
    img = dataset(folder)[0]['inputs']['img']
    assert img.shape == (3, 72, 80) and img.dtype == torch.uint8
    assert img[:, 0, 0].tolist() == list(expected)


def _palette():
    image = Image.new('P', (80, 72), 0)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    image.info['transparency'] = 0
    return image


def test_fixed_caption_without_placeholder_slot_fails(tmp_path):
    folder = concept(tmp_path)
    fails(lambda: dataset(folder, caption='a photo of a dog'), ValueError, "caption='a photo of a dog'",
          r"placeholder 'S\*'", r'a photo of \{\} dog')


def test_resolution_not_divisible_by_8_fails_when_the_dataset_is_built(tiny_cfg):
    from mmagic_vico.registry import DATASETS
    cfg = Config.fromfile(TINY_CONFIG).train_dataloader.dataset
    cfg.update(data_root=os.path.join(REPO, 'data', 'vico'), resolution=100)
    fails(lambda: DATASETS.build(cfg), ValueError, 'resolution=100', 'multiple of 8')


# ------------------------------------------------------------------ training config (tools/train.py)
def build_train_cfg(*options, config=TINY_CONFIG):
    from tools.train import build_cfg, parse_args
    return build_cfg(parse_args([config, '--work-dir', '/nonexistent/never-written'] +
                                (['--cfg-options', *options] if options else [])))


@pytest.mark.parametrize('option, patterns', [
    ('concept_dri=my_dog', ['concept_dri', "did you mean 'concept_dir'"]),
    ('model.placeholdr=<sks>', ['model.placeholdr', "ViCo .*takes no argument 'placeholdr'",
                                "did you mean 'placeholder'"]),
    ('default_hook.export.interval=5', ["no 'default_hook'", "did you mean 'default_hooks'"]),
    ('default_hooks.sample_grid.num_image=1', ["SampleGridHook .*no argument 'num_image'", "did you mean 'num_images'"]),
    ('model.num_vectors=2', ["ViCo .*no argument 'num_vectors'", 'it takes']),  # a Textual Inversion option
], ids=['top_level_key', 'model_argument', 'section_name', 'hook_argument', 'argument_of_another_method'])
def test_config_typo_fails_with_a_suggestion(tiny_cfg, option, patterns):
    fails(lambda: build_train_cfg(option), ValueError, re.escape('--cfg-options'), *patterns)


@pytest.mark.parametrize('option, patterns', [
    ('train_cfg.max_iters=0', ['max_iters=0', 'positive number of iterations']),
    ('train_cfg.max_iters=-3', ['max_iters=-3', 'positive number of iterations']),
    ('train_dataloader.batch_size=0', ['batch_size=0', 'positive integer']),
    ('optim_wrapper.optimizer.lr=-1', ['lr=-1', 'learning rate must be a positive']),
], ids=['zero_iters', 'negative_iters', 'zero_batch', 'negative_lr'])
def test_bad_schedule_fails_before_anything_is_built(tiny_cfg, option, patterns):
    fails(lambda: build_train_cfg(option), ValueError, *patterns)
    assert not os.path.exists('/nonexistent/never-written')


def test_known_options_still_pass(tiny_cfg):
    cfg = build_train_cfg('concept_dir=tiny_toy', 'model.frozen_dtype=bf16', 'work_dir=/x', 'train_cfg.max_iters=3',
                          'default_hooks.sample_grid.height=64', 'train_dataloader.num_workers=1')
    assert cfg.model.frozen_dtype == 'bf16' and cfg.default_hooks.sample_grid.height == 64


def test_missing_config_file_names_the_closest(tiny_cfg):
    fails(lambda: build_train_cfg(config='configs/vico/vico_tny.py'), FileNotFoundError, 'vico_tny.py',
          r'did you mean configs/vico/vico_tiny\.py')


def test_placeholder_vectors_below_one_fail(tiny_cfg, tiny_path):
    cfg = Config.fromfile(os.path.join(REPO, 'configs', 'textual_inversion', 'textual_inversion_tiny.py'))
    fails(lambda: MODELS.build(cfg.model | dict(num_vectors=0)), ValueError, 'num_vectors=0', 'positive integer')


# ------------------------------------------------------------------ checkpoints (--resume, load_from)
def test_resume_from_a_missing_checkpoint(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    fails(lambda: _load_checkpoint(str(tmp_path / 'iter_9.pth')), FileNotFoundError, 'iter_9.pth', '--resume alone')


def test_resume_from_a_truncated_checkpoint(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    torch.save({'state_dict': {'w': torch.zeros(1000)}, 'meta': {'iter': 4}}, tmp_path / 'iter_4.pth')
    (tmp_path / 'cut.pth').write_bytes((tmp_path / 'iter_4.pth').read_bytes()[:1500])
    fails(lambda: _load_checkpoint(str(tmp_path / 'cut.pth')), ValueError, 'cut.pth', 'truncated',
          'earlier iter_N.pth')


class RunsCode:
    """A pickle payload: creates a file when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.makedirs, (self.marker,)


def test_checkpoint_carrying_code_is_refused_unrun(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    torch.save({'state_dict': {}, 'meta': RunsCode(tmp_path / 'ran')}, tmp_path / 'shared.pth')
    fails(lambda: _load_checkpoint(str(tmp_path / 'shared.pth')), ValueError, 'shared.pth', 'could run code',
          'safetensors')
    assert not (tmp_path / 'ran').exists()


def test_checkpoint_of_another_method_fails_before_the_optimizer_state(model, tiny_path):
    from mmagic_vico.engine.hooks import check_checkpoint_matches
    ti = {'state_dict': {'text_encoder.embeddings.token_embedding.trainable_embeddings': torch.zeros(1, 32)}}
    fails(lambda: check_checkpoint_matches(model, ti, 'work_dirs/ti/iter_100.pth'), ValueError, 'iter_100.pth',
          'another model', 'missing', 'Resume with the config')
    check_checkpoint_matches(model, {'state_dict': model.trainable_state_dict()})  # its own: fine


# ------------------------------------------------------------------ trained weights (--weights, load_weights)
def test_pickle_given_as_weights_is_refused_unrun(model, tmp_path):
    torch.save({'w': RunsCode(tmp_path / 'ran')}, tmp_path / 'vico_weights.pth')
    fails(lambda: model.load_weights(str(tmp_path / 'vico_weights.pth')), ValueError, 'vico_weights.pth',
          'pickle', 'not opened', r'\.safetensors')
    assert not (tmp_path / 'ran').exists()


def test_diffusers_learned_embeds_given_as_weights(model, tmp_path):
    path = model.save_learned_embeds(str(tmp_path / 'learned_embeds.safetensors'))
    fails(lambda: model.load_weights(path), ValueError, 'learned_embeds.safetensors', 'load_textual_inversion',
          r'vico_weights\.safetensors')


def test_weights_with_nan_are_refused(model, tmp_path):
    state = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    next(iter(state.values()))[...] = float('nan')
    path = save_weights_file(str(tmp_path / 'vico_weights.safetensors'), state, model.weights_metadata())
    fails(lambda: model.load_weights(path), ValueError, 'vico_weights.safetensors', 'NaN', 'earlier export',
          'lower learning rate')


def test_weights_of_another_base_model(model, tmp_path):
    state = {k: torch.zeros(1, 768) if 'trainable_embeddings' in k else v
             for k, v in model.trainable_state_dict().items()}  # SD 1.5's text width on the tiny model
    path = save_weights_file(str(tmp_path / 'w.safetensors'), state, model.weights_metadata())
    fails(lambda: model.load_weights(path), ValueError, r'w\.safetensors', r'\(1, 768\)', 'another base model')


def test_weights_named_for_another_base_model_warn(model, tmp_path):
    path = save_weights_file(str(tmp_path / 'w.safetensors'), model.trainable_state_dict(),
                             model.weights_metadata() | dict(pretrained_model='stabilityai/sd-2-1'))
    warns(lambda: model.load_weights(path), 'sd-2-1', 'only faithful on the same base model')


def test_missing_weights_file(model, tmp_path):
    fails(lambda: model.load_weights(str(tmp_path / 'nope.safetensors')), FileNotFoundError, 'nope.safetensors',
          'written by training')


# ------------------------------------------------------------------ disk full while writing
def full_disk(monkeypatch):
    """Writes go through, then flushing them to the disk fails as on a full disk."""
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, 'fsync', fsync)


def leftovers(folder):
    return [n for n in os.listdir(folder) if n.endswith(('.tmp', '.old'))]


def test_disk_full_while_exporting_keeps_the_previous_export(model, tmp_path, monkeypatch):
    path = model.save_weights(str(tmp_path / 'vico_weights.safetensors'))
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # shareable as a plainly written file, not 0600
    before = open(path, 'rb').read()
    with torch.no_grad():
        next(p for p in model.parameters() if p.requires_grad).add_(1.0)
    try:
        full_disk(monkeypatch)
        error = fails(lambda: model.save_weights(path), OSError, 'disk is full', re.escape(path),
                      'previous vico_weights.safetensors, if any, is intact', 'Free space', '--work-dir')
    finally:
        with torch.no_grad():
            next(p for p in model.parameters() if p.requires_grad).sub_(1.0)
    assert error.errno == errno.ENOSPC
    assert open(path, 'rb').read() == before and not leftovers(tmp_path)


def test_disk_full_while_saving_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    from mmengine.runner.checkpoint import save_checkpoint

    from mmagic_vico.engine import allow_mmengine_checkpoints
    allow_mmengine_checkpoints()  # as importing mmagic_vico.engine does: atomic checkpoint writes
    path = str(tmp_path / 'iter_2.pth')
    save_checkpoint({'meta': {'iter': 2}, 'state_dict': {'w': torch.ones(3)}}, path)
    before = open(path, 'rb').read()
    full_disk(monkeypatch)
    fails(lambda: save_checkpoint({'meta': {'iter': 2}, 'state_dict': {'w': torch.zeros(3)}}, path), OSError,
          'disk is full', 'iter_2.pth', 'Free space')
    assert open(path, 'rb').read() == before and not leftovers(tmp_path)


def test_disk_full_while_exporting_a_model_folder_keeps_the_previous_folder(tmp_path, monkeypatch):
    from mmagic_vico.utils.atomic import atomic_folder
    folder = tmp_path / 'diffusers'
    (folder / 'unet').mkdir(parents=True)
    (folder / 'unet' / 'config.json').write_text('{"old": true}')

    def export():  # as DreamBooth.save_pretrained: files into the folder, the disk fills in the middle
        with atomic_folder(str(folder)) as tmp:
            os.makedirs(os.path.join(tmp, 'unet'))
            raise OSError(errno.ENOSPC, 'No space left on device')
    fails(export, OSError, 'disk is full', 'diffusers', 'intact')
    assert (folder / 'unet' / 'config.json').read_text() == '{"old": true}' and not leftovers(tmp_path)


# ------------------------------------------------------------------ sampling (model.infer)
@pytest.mark.parametrize('kwargs, error, patterns', [
    (dict(guidance_scale=float('nan')), ValueError, ['guidance_scale=nan', 'finite number >= 0']),
    (dict(guidance_scale=-3.0), ValueError, ['guidance_scale=-3.0', '7.5 is the default']),
    (dict(eta=5.0), ValueError, ['eta=5.0', 'between 0']),
    (dict(negative_prompt=['a', 'b']), ValueError, ['negative_prompt has 2 entries for 1 prompts', 'one per prompt']),
    (dict(latents=torch.zeros(1, 4, 4, 4)), ValueError, [r'latents has shape \(1, 4, 4, 4\)',
                                                         r'expected \(1, 4, 8, 8\)']),
    (dict(prompt=[]), ValueError, [r'prompt=\[\]', 'non-empty list of strings']),
], ids=['nan_guidance', 'negative_guidance', 'eta_above_1', 'negative_prompt_count', 'latents_shape', 'no_prompt'])
def test_bad_sampling_argument_fails_before_denoising(model, photo, kwargs, error, patterns):
    args = dict(prompt='a photo of S*') | kwargs
    fails(lambda: model.infer(args.pop('prompt'), photo, **FAST, **args), error, *patterns)


def test_missing_reference_image(model, tmp_path):
    fails(lambda: model.infer('a photo of S*', str(tmp_path / 'ref.jpg'), **FAST), FileNotFoundError, 'ref.jpg',
          'give the path of a photo')


def test_corrupt_reference_image(model, tmp_path):
    (tmp_path / 'ref.jpg').write_bytes(b'\xff\xd8\xff broken')
    fails(lambda: model.infer('a photo of S*', str(tmp_path / 'ref.jpg'), **FAST), ValueError, 'ref.jpg',
          'not a readable image', 're-save it as PNG or JPEG')


def test_prompt_without_the_placeholder_warns_naming_it(model, photo):
    warns(lambda: model.infer('a photo of a red toy', photo, **FAST), "'a photo of a red toy'",
          r"placeholder 'S\*'", r'a photo of S\*')


def test_placeholder_past_clips_77_tokens_warns(model, photo):
    prompt = 'a photo of a ' + 'very ' * 80 + 'nice S*'
    warns(lambda: model.infer(prompt, photo, **FAST), 'longer than the 77 tokens', 'put the placeholder early',
          r"No prompt contains the placeholder 'S\*' within CLIP's 77 tokens")


# ------------------------------------------------------------------ tools/infer.py flags
@pytest.mark.parametrize('flags, patterns', [
    (['--steps', '-5'], ['--steps', "'-5' is not a positive integer"]),
    (['--num-images', '0'], ['--num-images', "'0' is not a positive integer"]),
    (['--height', '100'], ['--height', 'not a multiple of 8', '96 or 104']),
    (['--guidance', 'nan'], ['--guidance', "'nan' is not a finite number >= 0"]),
], ids=['negative_steps', 'zero_images', 'height_not_multiple_of_8', 'nan_guidance'])
def test_bad_sampling_flag_is_refused_by_the_parser(capsys, flags, patterns):
    from tools.infer import parse_args
    with pytest.raises(SystemExit) as info:
        parse_args([TINY_CONFIG, *flags])
    assert info.value.code == 2
    says(capsys.readouterr().err, *patterns)


@pytest.mark.parametrize('flag', ['--weights', '--reference'])
def test_missing_file_flag_fails_before_the_model_is_built(tmp_path, monkeypatch, tiny_cfg, flag):
    from tools import infer
    monkeypatch.setattr(infer, 'MODELS', None)  # building a model here would be an AttributeError
    argv = [TINY_CONFIG, flag, str(tmp_path / 'nope.file'), '--cfg-options', f'work_dir={tmp_path}']
    fails(lambda: infer.main(argv), FileNotFoundError, f'{flag} .*nope.file', 'give ')
    assert not (tmp_path / 'samples').exists()


# ------------------------------------------------------------------ evaluation
def test_missing_dreambench_folder(tmp_path):
    from mmagic_vico.evaluation import read_dreambench
    fails(lambda: read_dreambench(str(tmp_path / 'dreambench')), FileNotFoundError, 'dreambench',
          'prompts_and_classes.txt')


def test_prompt_file_not_in_dreambench_format(tmp_path):
    from mmagic_vico.evaluation import read_dreambench
    (tmp_path / 'prompts_and_classes.txt').write_text('subject,class\ndog7,dog\n')
    fails(lambda: read_dreambench(str(tmp_path)), ValueError, 'prompts_and_classes.txt', '0 object',
          'not in the DreamBench format', 'google/dreambooth')


@pytest.mark.parametrize('kind', ['clip', 'dino'])
def test_missing_scorer_folder(tmp_path, kind):
    from mmagic_vico.evaluation import ImageEmbedder
    fails(lambda: ImageEmbedder(str(tmp_path / 'clip-vit-b32'), kind), FileNotFoundError, 'clip-vit-b32',
          f'--{kind}', 'huggingface-cli download')


def test_safetensors_whose_header_length_looks_like_a_pickle_still_loads(tmp_path):
    """640 = 0x280: the length's first bytes are a protocol-2 pickle's magic (\\x80\\x02)."""
    import struct

    from safetensors.torch import save_file

    from mmagic_vico.models.weights import read_safetensors
    path = str(tmp_path / 'w.safetensors')
    for pad in range(700):
        save_file({'w': torch.ones(2)}, path, metadata={'pad': 'x' * pad})
        if struct.unpack('<Q', open(path, 'rb').read(8))[0] == 640:
            break
    assert open(path, 'rb').read(2) == b'\x80\x02'
    assert torch.equal(read_safetensors(path)[0]['w'], torch.ones(2))


def test_evaluation_config_typo_fails_before_the_scorers_load(tmp_path, monkeypatch, tiny_cfg):
    from tools import evaluate
    monkeypatch.setattr(evaluate, 'build_evaluator', None)  # loading CLIP / DINO here would be a TypeError
    argv = [TINY_CONFIG, '--dreambench', str(tmp_path), '--subjects', 'dog7', '--cfg-options', 'model.placeholdr=x']
    fails(lambda: evaluate.main(argv), ValueError, 'model.placeholdr', "did you mean 'placeholder'")
