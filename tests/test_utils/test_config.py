from mmengine import Config

from mmagic_vico.utils.config import apply_cfg_options, work_dir_of

from ..conftest import TINY_CONFIG


def test_top_level_concept_options_reach_the_keys_built_from_them():
    cfg = apply_cfg_options(Config.fromfile(TINY_CONFIG), dict(
        concept_dir='my_dog', placeholder='<sks>', initialize_token='dog', data_root='/photos'))
    dataset = cfg.train_dataloader.dataset
    assert (dataset.concept_dir, dataset.placeholder, dataset.data_root) == ('my_dog', '<sks>', '/photos')
    assert (cfg.model.placeholder, cfg.model.initialize_token) == ('<sks>', 'dog')


def test_an_explicit_nested_option_wins_and_other_keys_stay():
    cfg = apply_cfg_options(Config.fromfile(TINY_CONFIG), {'placeholder': '<a>', 'model.placeholder': '<b>'})
    assert cfg.model.placeholder == '<b>' and cfg.train_dataloader.dataset.placeholder == '<a>'
    assert cfg.train_dataloader.dataset.concept_dir == 'tiny_toy'


def test_work_dir_defaults_to_the_config_name_and_the_concept():
    cfg = Config.fromfile(TINY_CONFIG)
    assert work_dir_of(cfg, TINY_CONFIG) == 'work_dirs/vico_tiny/tiny_toy'
    other = apply_cfg_options(Config.fromfile(TINY_CONFIG), dict(concept_dir='my_dog'))
    assert work_dir_of(other, TINY_CONFIG) == 'work_dirs/vico_tiny/my_dog'  # two concepts, two folders
    assert work_dir_of(cfg, TINY_CONFIG, '/x') == '/x'
    aesthetic = 'configs/aesthetic_gradients/aesthetic_gradients_tiny.py'  # no concept: the config's name alone
    assert work_dir_of(Config.fromfile(aesthetic), aesthetic) == 'work_dirs/aesthetic_gradients_tiny'
