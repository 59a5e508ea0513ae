"""learnable_property: the captions every config trains with, and a wrong value named where it enters."""
import glob
import os
import warnings

import pytest
from mmengine import Config

from mmagic_vico.datasets import ViCoConceptDataset
from mmagic_vico.registry import DATASETS
from mmagic_vico.utils import register_all_modules
from mmagic_vico.utils.config import apply_cfg_options, check_train_cfg, load_config

from ..conftest import REPO

STYLE_FOLDER = os.path.join(REPO, 'data', 'vico', 'linocut')
TRAIN_CONFIGS = sorted(p for p in glob.glob(os.path.join(REPO, 'configs', '*', '*.py'))
                       if 'train_dataloader' in Config.fromfile(p))
STYLE_CONFIGS = [p for p in TRAIN_CONFIGS if '_style' in os.path.basename(p)]


def lines(name):
    with open(os.path.join(REPO, 'data', 'vico', name), encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip()]


def captions(cfg, n=60):
    """The captions of ``n`` items of the config's dataset, built on the shipped style folder."""
    register_all_modules()
    dataset = cfg.train_dataloader.dataset.copy()
    dataset.update(data_root=os.path.dirname(STYLE_FOLDER), concept_dir='linocut', resolution=64)
    dataset.pop('class_dir', None)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the 64 px test resolution is below the recommended size
        ds = DATASETS.build(dataset)
    return [ds[i % len(ds)]['data_samples'].prompt for i in range(n)], ds.placeholder


def test_every_style_template_is_a_style_caption_and_no_object_one_is():
    assert all('style' in t and '{}' in t for t in lines('style_templates_small.txt'))
    assert not any('style' in t for t in lines('imagenet_templates_small.txt'))


def test_six_style_configs_exist():
    names = {os.path.relpath(p, os.path.join(REPO, 'configs')) for p in STYLE_CONFIGS}
    methods = ('textual_inversion/textual_inversion_style', 'dreambooth/dreambooth_lora_style', 'vico/vico_style')
    assert names == {f'{m}{t}.py' for m in methods for t in ('', '_tiny')}


@pytest.mark.parametrize('path', TRAIN_CONFIGS, ids=lambda p: os.path.basename(p))
def test_style_configs_caption_styles_and_object_configs_caption_objects(path):
    cfg = Config.fromfile(path)
    got, placeholder = captions(cfg)
    style = [t.format(placeholder) for t in lines('style_templates_small.txt')]
    if path in STYLE_CONFIGS:
        assert cfg.learnable_property == 'style'
        assert set(got) <= set(style) and len(set(got)) > 5  # drawn from the whole style list
        assert all(placeholder in c for c in got)
    else:
        assert cfg.learnable_property == 'object'
        objects = [t.format(placeholder) for t in lines('imagenet_templates_small.txt')]
        fixed = cfg.train_dataloader.dataset.get('caption')
        assert set(got) <= ({fixed.format(placeholder)} if fixed else set(objects))
        assert not set(got) & set(style)


def test_vico_style_sees_every_reference_patch_and_vico_objects_are_masked():
    assert Config.fromfile(os.path.join(REPO, 'configs', 'vico', 'vico_style.py')).model.object_mask is False
    assert Config.fromfile(os.path.join(REPO, 'configs', 'vico', 'vico.py')).model.object_mask is True


def test_learnable_property_from_the_command_line_reaches_captions_and_object_mask():
    tiny = os.path.join(REPO, 'configs', 'vico', 'vico_tiny.py')
    cfg = load_config(tiny, {'learnable_property': 'style'})
    assert cfg.model.object_mask is False
    got, _ = captions(cfg)
    assert set(got) <= {t.format('S*') for t in lines('style_templates_small.txt')}
    kept = apply_cfg_options(Config.fromfile(tiny), {'learnable_property': 'style', 'model.object_mask': True})
    assert kept.model.object_mask is True and kept.train_dataloader.dataset.learnable_property == 'style'
    back = load_config(STYLE_CONFIGS[-1], {'learnable_property': 'object'})
    assert back.model.object_mask is True


BAD = "learnable_property='painting' is neither 'object' nor 'style'"


def test_a_wrong_value_is_named_with_the_two_choices_where_it_enters(tmp_path):
    with pytest.raises(ValueError, match=BAD):
        ViCoConceptDataset(os.path.dirname(STYLE_FOLDER), 'linocut', 'S*', learnable_property='painting')
    tiny = os.path.join(REPO, 'configs', 'textual_inversion', 'textual_inversion_tiny.py')
    with pytest.raises(ValueError, match=BAD):  # --cfg-options: before anything is merged
        load_config(tiny, {'learnable_property': 'painting'})
    edited = tmp_path / 'edited.py'  # a config file with the wrong value: before the Runner starts
    edited.write_text(f"_base_ = ['{tiny}']\nlearnable_property = 'painting'\n"
                      "train_dataloader = dict(dataset=dict(learnable_property=learnable_property))\n")
    with pytest.raises(ValueError, match=BAD):
        check_train_cfg(Config.fromfile(str(edited)))


def test_a_fixed_caption_with_style_warns_that_it_wins():
    with pytest.warns(UserWarning, match='fixed caption'):
        ds = ViCoConceptDataset(os.path.dirname(STYLE_FOLDER), 'linocut', 'sks', caption='a photo of {} dog',
                                learnable_property='style', resolution=64)
    assert ds.templates == ['a photo of {} dog']
