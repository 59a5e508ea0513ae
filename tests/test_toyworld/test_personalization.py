"""Personalization shows on the shipped toy-world base. The README's main command trains ViCo on one toy
DreamBench concept (configs/vico/vico_toy.py, data/toybench/star_robot); on a few fixed-seed samples of
the world's scenes, its weights bring that concept back closer than the unpersonalized base prompted with
the class word, scenes kept; with its image attention off, the trained model samples exactly as Textual
Inversion does with the same embedding."""
import os

import numpy as np
import pytest
import torch

from ..conftest import REPO
from ..helpers.readme import main_command

BENCH = os.path.join(REPO, 'data', 'toybench')
CONFIG = os.path.join(REPO, 'configs', 'vico', 'vico_toy.py')
CONCEPT, CLASS = 'star_robot', 'robot'
WEIGHTS = os.path.join('work_dirs', 'vico_toy', CONCEPT, 'vico_weights.safetensors')
SAMPLING = dict(num_inference_steps=25, guidance_scale=5.0, height=64, width=64, show_progress=False)
SEEDS = [0, 1]
#: Measured on the toy sweep's ViCo weights of this recipe (seed pairs [0, 1], [2, 3], [4, 5]): subject-cos
#: 0.786 / 0.777 / 0.770 against the base's 0.693 / 0.701 / 0.693; Textual Inversion's weights gave 0.754
#: against 0.702 in the first probe. Half the measured gap.
MARGIN = 0.04


def prompts(token: str) -> list:
    from mmagic_vico.toyworld.world import BACKGROUND_PHRASES
    return [f'a photo of {token} {phrase}' for phrase in BACKGROUND_PHRASES.values()]


@pytest.fixture(scope='module')
def trained(readme_repo):
    """The model of the main command's config with the weights the main command trained."""
    from mmengine import Config

    from mmagic_vico.registry import MODELS
    from mmagic_vico.utils import register_all_modules
    command, _ = main_command()
    assert 'configs/vico/vico_toy.py' in command, 'this test reads what the README main command trains: update it'
    register_all_modules()
    model = MODELS.build(Config.fromfile(CONFIG).model).eval()
    model.load_weights(os.path.join(readme_repo[0], WEIGHTS))
    return model


def sample(model, texts, **extra) -> list:
    return [image for seed in SEEDS for image in model.infer(texts, seed=seed, **SAMPLING, **extra)['samples']]


def photos() -> list:
    from PIL import Image

    from mmagic_vico.utils.image import list_images
    return [Image.open(path).convert('RGB') for path in list_images(os.path.join(BENCH, CONCEPT))]


def test_the_main_commands_vico_brings_the_concept_back_closer_than_the_base(trained):
    from mmagic_vico.models import StableDiffusion
    from mmagic_vico.toyworld.fidelity import ToyFidelity
    from mmagic_vico.toyworld.gates import default_base_path
    fidelity = ToyFidelity.from_benchmark(BENCH)
    texts = [t for _ in SEEDS for t in prompts(CLASS)]  # the scene each sample was asked for
    concept = photos()
    ours = fidelity.score(CONCEPT, sample(trained, prompts(trained.placeholder), image_reference=concept[0]),
                          texts, concept)
    base = fidelity.score(CONCEPT, sample(StableDiffusion(default_base_path()).eval(), prompts(CLASS)), texts,
                          concept)
    assert ours['subject-cos'] > base['subject-cos'] + MARGIN, (ours, base)
    assert ours['context'] >= base['context'] - 0.125, (ours, base)  # the scenes are kept (one miss in 8 allowed)


def test_with_image_attention_off_vico_samples_as_textual_inversion_with_its_embedding(trained):
    from mmengine import Config

    from mmagic_vico.convert.vico_layout import embedding_key
    from mmagic_vico.registry import MODELS
    ti = MODELS.build(Config.fromfile(os.path.join(REPO, 'configs', 'textual_inversion',
                                                   'textual_inversion_toy.py')).model).eval()
    key = embedding_key()
    with torch.no_grad():
        ti.state_dict()[key].copy_(trained.state_dict()[key])  # the trained word, nothing else
    texts = prompts(trained.placeholder)[:3]
    off = sample(trained, texts, image_cross_attention_scale=0)
    theirs = sample(ti, texts)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(off, theirs))
    on = sample(trained, texts, image_reference=photos()[0])
    assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(on, theirs))  # it can fail
