"""The shared sampling loop: one generator (or seed) per image makes every image of a batched call the
image a call for it alone makes (ViCo with its shared reference stream, and Textual Inversion).

The models run in float64 here, so that what is compared is the logic (which noise each image draws,
which reference it sees), not float32 rounding, which differs with the batch size in every matrix
product and which the random tiny model amplifies; tests/test_evaluation checks float32 images."""
import os

import numpy as np
import pytest
import torch
from mmengine import Config

from mmagic_vico.registry import MODELS

from ..conftest import REPO
from .test_vico.test_vico import FAST, pixels

TI_TINY = os.path.join(REPO, 'configs', 'textual_inversion', 'textual_inversion_tiny.py')
PROMPTS = ['a photo of S*', 'a S* on a long sandy beach at dawn', 'S* in the snow']


@pytest.fixture
def textual_inversion(tiny_path):
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(TI_TINY).model)
    with torch.no_grad():  # as if trained: the placeholder is not its initialisation
        model.text_encoder.get_input_embeddings().trainable_embeddings.add_(1.5)
    return model


def sample(model, reference, prompts, **kwargs):
    extra = dict(image_reference=reference) if model.needs_reference else {}
    return pixels(model.infer(prompts, **extra, **FAST, **kwargs)['samples'])


@pytest.mark.parametrize('method', ['vico', 'textual_inversion'])
@pytest.mark.parametrize('guidance, eta', [(7.5, 0.0), (3.0, 0.6), (1.0, 0.0)])
def test_one_seed_per_image_gives_the_images_of_one_image_calls(method, guidance, eta, request, reference_image):
    model = request.getfixturevalue(method).double()
    n = 2
    seeds = [1000 * p + k + 7 for p in range(len(PROMPTS)) for k in range(n)]  # prompt-major
    batched = sample(model, reference_image, PROMPTS, num_images_per_prompt=n, seed=seeds,
                     guidance_scale=guidance, eta=eta)
    alone = np.concatenate([sample(model, reference_image, PROMPTS[i // n], seed=s, guidance_scale=guidance,
                                   eta=eta) for i, s in enumerate(seeds)])
    assert batched.shape == alone.shape == (len(seeds), 64, 64, 3)
    assert np.abs(batched - alone).max() <= 1  # within 1/255
    assert len({im.tobytes() for im in batched}) == len(seeds)  # the seeds really differ per image
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    assert np.array_equal(sample(model, reference_image, PROMPTS, num_images_per_prompt=n, generator=generators,
                                 guidance_scale=guidance, eta=eta), batched)


def test_vico_batched_call_still_shares_one_reference_row_per_prompt(vico, reference_image):
    rows = []
    handle = vico.unet.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    sample(vico, reference_image, PROMPTS[:2], num_images_per_prompt=3, seed=list(range(6)))
    handle.remove()
    assert rows and set(rows) == {2 * 6 + 2 * 2}  # both guidance halves: 6 generated rows + 2 reference rows


@pytest.mark.parametrize('bad, match', [(dict(seed=[1, 2, 3]), 'seed has 3 entries for 4 image'),
                                        (dict(generator=[torch.Generator()]), 'generator has 1 entries for 4')])
def test_a_list_of_the_wrong_length_is_refused(vico, reference_image, bad, match):
    with pytest.raises(ValueError, match=match):
        vico.infer(PROMPTS[:2], reference_image, num_images_per_prompt=2, **FAST, **bad)
