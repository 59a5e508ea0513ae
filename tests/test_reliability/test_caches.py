"""Caches that know what made them (mmagic_vico/utils/manifest.py): evaluation images and DreamBooth's class
images are reused only under the config, weights and sampler that made them; a truncated cached image is
made again (named in a warning) and equals the one it replaces."""
import os
import shutil

import pytest
import torch
from mmengine import Config

from mmagic_vico.models.dreambooth import generate_class_images
from mmagic_vico.registry import MODELS
from mmagic_vico.utils.errors import ConflictError, MissingFileError
from mmagic_vico.utils.manifest import claim, read_manifest, write_manifest

from ..conftest import REPO, TINY_CONFIG

TI_TINY = os.path.join(REPO, 'configs', 'textual_inversion', 'textual_inversion_tiny.py')
DB_TINY = os.path.join(REPO, 'configs', 'dreambooth', 'dreambooth_tiny.py')
FAST = dict(num_inference_steps=1, height=64, width=64)
# a DreamBench-format protocol of two prompts for one subject (the tiny toy's photos): two images per run
PROTOCOL = """Classes
subject_name,class
toy,toy

Prompts
Object Prompts
'a {0} {1} in the jungle'.format(unique_token, class_token),
'a {0} {1} in the snow'.format(unique_token, class_token),

Live Subject Prompts
'a {0} {1} in the jungle'.format(unique_token, class_token),
"""


def truncate(path):
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 3])


def test_claim_reuses_only_under_the_same_record(tmp_path):
    folder = str(tmp_path / 'cache')
    os.makedirs(folder)
    claim(folder, {'sampler': {'steps': 10}}, 'images', 'FIX')  # empty: claimed
    open(os.path.join(folder, 'a.png'), 'wb').close()
    claim(folder, {'sampler': {'steps': 10}}, 'images', 'FIX')  # same record: reused
    with pytest.raises(ConflictError, match=r'images in .* were made with other settings \(sampler\.steps: 10 -> 20\).*FIX'):
        claim(folder, {'sampler': {'steps': 20}}, 'images', 'FIX')
    os.remove(os.path.join(folder, '.manifest.json'))
    with pytest.raises(ConflictError, match=r'holds 1 file\(s\) \(a\.png\) but no \.manifest\.json.*FIX'):
        claim(folder, {'sampler': {'steps': 10}}, 'images', 'FIX')


# ------------------------------------------------------------------ evaluation images
@pytest.fixture(scope='module')
def evaluator(tmp_path_factory, tiny_path):
    from mmagic_vico.evaluation.evaluator import DreamBenchEvaluator
    from mmagic_vico.models.tiny_sd import build_tiny_clip, build_tiny_dino
    root = tmp_path_factory.mktemp('bench')
    (root / 'prompts_and_classes.txt').write_text(PROTOCOL)
    os.symlink(os.path.join(REPO, 'data', 'vico', 'tiny_toy'), root / 'toy')
    clip = build_tiny_clip(str(root / 'clip'), tiny_path)
    return DreamBenchEvaluator(str(root), clip, build_tiny_dino(str(root / 'dino')))


@pytest.fixture(scope='module')
def two_weights(tmp_path_factory, tiny_cfg, tiny_path):
    """Two Textual Inversion weights files of the same placeholder (different embeddings)."""
    model = MODELS.build(Config.fromfile(TI_TINY).model)
    folder = tmp_path_factory.mktemp('weights')
    paths = []
    embeddings = model.text_encoder.get_input_embeddings().trainable_embeddings
    for i in range(2):
        with torch.no_grad():  # not a constant: the text encoder's layer norm would take it out again
            embeddings.add_(torch.randn(embeddings.shape, generator=torch.Generator().manual_seed(i)))
        paths.append(model.save_weights(str(folder / f'w{i}.safetensors')))
    return paths


def evaluate(evaluator, out, weights, config=TI_TINY):
    return evaluator.evaluate(Config.fromfile(config).model, ['toy'], str(out), weights, num_images=1, **FAST)


def test_evaluation_images_of_other_weights_or_another_method_are_not_reused(evaluator, two_weights, tmp_path):
    out = tmp_path / 'evaluation'
    first = evaluate(evaluator, out, two_weights[0])['subjects']['toy']
    images = {p: open(p, 'rb').read() for p in map(str, (out / 'toy').glob('*.png'))}
    # the two images and their contact sheet (written once all exist)
    assert sorted(map(os.path.basename, images)) == ['00_00.png', '01_00.png', 'grid.png']
    assert read_manifest(str(out / 'toy'))['weights_sha256']
    with pytest.raises(ConflictError) as info:  # the same out dir, other weights: refused before any image
        evaluate(evaluator, out, two_weights[1])
    message = str(info.value)
    assert str(out / 'toy') in message and 'weights_sha256' in message and '--out-dir' in message
    with pytest.raises(ConflictError, match=r'model\.type: "TextualInversion" -> "ViCo"'):
        evaluate(evaluator, out, None, config=TINY_CONFIG)
    assert {p: open(p, 'rb').read() for p in images} == images  # untouched
    again = evaluate(evaluator, out, two_weights[0])['subjects']['toy']  # the same run: reused, same scores
    assert again == first
    other = evaluate(evaluator, tmp_path / 'other', two_weights[1])['subjects']['toy']
    assert other['CLIP-T'] != first['CLIP-T']  # the weights matter: a reused folder would have hidden it


def test_images_made_the_older_way_are_not_reused(evaluator, two_weights, tmp_path):
    """Images of the same config, weights and sampler made before one generator per image and ViCo's
    posterior-mean reference latent (their manifest has no ``generation``) are not this code's images."""
    out = tmp_path / 'evaluation'
    evaluate(evaluator, out, two_weights[0])
    record = read_manifest(str(out / 'toy'))
    del record['generation']
    write_manifest(str(out / 'toy'), record)
    with pytest.raises(ConflictError, match=r'generation: null -> "one generator pe'):
        evaluate(evaluator, out, two_weights[0])


def test_a_truncated_evaluation_image_is_made_again_and_named(evaluator, two_weights, tmp_path):
    out = tmp_path / 'evaluation'
    evaluate(evaluator, out, two_weights[0])
    path = out / 'toy' / '01_00.png'
    whole = path.read_bytes()
    truncate(path)
    with pytest.warns(UserWarning, match=r'cached image .*01_00\.png is truncated or corrupt .*making it again'):
        evaluate(evaluator, out, two_weights[0])
    assert path.read_bytes() == whole


def test_weights_of_each_subject_are_checked_before_any_image(evaluator, tmp_path):
    with pytest.raises(MissingFileError, match=r"nope_toy\.safetensors' \(subject toy\) does not exist"):
        evaluate(evaluator, tmp_path / 'e', str(tmp_path / 'nope_{subject}.safetensors'))
    with pytest.raises(ValueError, match=r'only field may be \{subject\}'):
        evaluate(evaluator, tmp_path / 'e', str(tmp_path / '{name}.safetensors'))
    assert not os.path.exists(tmp_path / 'e' / 'toy' / '00_00.png')


# ------------------------------------------------------------------ DreamBooth class images
@pytest.fixture(scope='module')
def dreambooth(tiny_cfg, tiny_path):
    return MODELS.build(Config.fromfile(DB_TINY).model)


def test_class_images_of_another_class_prompt_are_not_reused(dreambooth, tmp_path):
    folder = str(tmp_path / 'class')
    assert generate_class_images(dreambooth, 'a photo of toy', folder, 2, **FAST) == 2
    with pytest.raises(ConflictError) as info:
        generate_class_images(dreambooth, 'a photo of cat', folder, 2, **FAST)
    message = str(info.value)
    assert 'class_prompt: "a photo of toy" -> "a photo of cat"' in message and 'class_dir=' in message
    with pytest.raises(ConflictError, match='num_inference_steps: 1 -> 2'):  # another sampler, too
        generate_class_images(dreambooth, 'a photo of toy', folder, 2, **dict(FAST, num_inference_steps=2))
    assert generate_class_images(dreambooth, 'a photo of toy', folder, 3, **FAST) == 1  # more of the same: added


def test_a_truncated_class_image_is_made_again_and_named(dreambooth, tmp_path):
    folder = tmp_path / 'class'
    generate_class_images(dreambooth, 'a photo of toy', str(folder), 2, **FAST)
    whole = (folder / 'class_00001.png').read_bytes()
    truncate(folder / 'class_00001.png')
    with pytest.warns(UserWarning, match=r'class_00001\.png is truncated or corrupt'):
        assert generate_class_images(dreambooth, 'a photo of toy', str(folder), 2, **FAST) == 1
    assert (folder / 'class_00001.png').read_bytes() == whole


def test_a_changed_class_noun_stops_training_before_the_model_loads(dreambooth, tmp_path):
    """As the issue found it: class images of 'toy' in class_dir, then a config asking for 'cat' priors."""
    from mmagic_vico.engine.preflight import check_cached_class_images
    from mmagic_vico.utils.config import load_config
    folder = tmp_path / 'class'
    hook = Config.fromfile(DB_TINY).default_hooks.class_images
    generate_class_images(dreambooth, 'a photo of toy', str(folder), 2, num_inference_steps=hook.num_inference_steps,
                          height=hook.height, width=hook.width)
    same = load_config(DB_TINY, {'class_dir': str(folder)})
    check_cached_class_images(same)  # the config that made them: fine
    cat = load_config(DB_TINY, {'class_dir': str(folder), 'model.class_prompt': 'a photo of cat'})
    with pytest.raises(ConflictError, match=r'default_hooks\.class_images\.class_dir: class images in .* were made '
                                            r'with other settings \(class_prompt: "a photo of toy" -> "a photo of cat"'):
        check_cached_class_images(cat)
    shutil.rmtree(folder)
    check_cached_class_images(cat)  # an empty (or new) class_dir is fine
