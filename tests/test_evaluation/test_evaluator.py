"""DreamBench generation in batches: which images each infer call makes, and that a batched evaluator
writes the images of the one-image-per-call one."""
import glob
import os

import numpy as np
import pytest
import torch
from mmengine import Config
from PIL import Image

from mmagic_vico.evaluation.batching import generation_calls, image_name
from mmagic_vico.evaluation.evaluator import DreamBenchEvaluator
from mmagic_vico.registry import MODELS

from ..conftest import DREAMBENCH, REPO
from ..helpers.dreambench import small_dreambench
from .test_metrics import clip_folder, dino_folder  # noqa: F401 (fixtures)

TI_TINY = os.path.join(REPO, 'configs', 'textual_inversion', 'textual_inversion_tiny.py')
SAMPLING = dict(num_inference_steps=2, guidance_scale=7.5, height=64, width=64)
needs_dreambench = pytest.mark.skipif(not os.path.isdir(DREAMBENCH), reason='the DreamBench subset is not here')


@pytest.mark.parametrize('num_prompts', [1, 3, 25])
@pytest.mark.parametrize('num_images', [1, 3, 4, 9])
@pytest.mark.parametrize('batch_size', [1, 2, 4, 8, 100])
def test_calls_cover_every_image_once_in_batches_of_whole_prompts(num_prompts, num_images, batch_size):
    calls = generation_calls(num_prompts, num_images, batch_size)
    items = [item for call in calls for item in call.items()]
    assert sorted(items) == [(p, k) for p in range(num_prompts) for k in range(num_images)]
    assert items == sorted(items)  # prompt-major, call after call
    assert all(len(call.items()) <= batch_size for call in calls)
    if num_images <= batch_size:  # every image of a prompt in one call, and as many prompts as fit
        assert all(call.images == tuple(range(num_images)) for call in calls)
        assert all(len(call.prompts) == batch_size // num_images for call in calls[:-1])
    else:
        assert all(len(call.prompts) == 1 and len(call.images) == batch_size for call in calls
                   if call.images[-1] < num_images - 1)


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match='batch_size=0'):
        generation_calls(25, 4, 0)


class CountingCalls:
    """A model whose infer calls are counted (they run the real infer)."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def infer(self, prompt, **kwargs):
        self.calls.append(len(prompt) * kwargs['num_images_per_prompt'])
        return self.model.infer(prompt, **kwargs)


def method_model(method, tiny_cfg):
    torch.manual_seed(0)
    cfg = tiny_cfg if method == 'vico' else Config.fromfile(TI_TINY)
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():  # as if trained: the placeholder moved away from its initialisation
        model.text_encoder.get_input_embeddings().trainable_embeddings.mul_(-2.0)
    return model


def images(folder):
    """The generated images of a folder (not its contact sheet grid.png)."""
    return {name: np.asarray(Image.open(os.path.join(folder, name))).astype(np.int16)
            for name in sorted(os.listdir(folder)) if name != 'grid.png'}


@needs_dreambench
@pytest.mark.parametrize('method', ['vico', 'textual_inversion'])
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_batched_generation_writes_the_images_of_one_image_calls(method, dtype, tiny_cfg, tiny_path, tmp_path,
                                                                   clip_folder, dino_folder):  # noqa: F811
    evaluator = DreamBenchEvaluator(small_dreambench(tmp_path / 'dreambench', ['dog7']), clip_folder, dino_folder)
    model = CountingCalls(method_model(method, tiny_cfg).to(dtype))
    evaluator.generate(model, 'dog7', str(tmp_path / 'alone'), num_images=2, seed=5, batch_size=1, **SAMPLING)
    assert model.calls == [1] * 6
    model.calls.clear()
    paths = evaluator.generate(model, 'dog7', str(tmp_path / 'batched'), num_images=2, seed=5, batch_size=8,
                               **SAMPLING)
    assert model.calls == [6]  # 3 prompts x 2 images in one call
    assert [os.path.basename(p) for p in paths] == [image_name(p, k) for p in range(3) for k in range(2)]
    alone, batched = images(tmp_path / 'alone'), images(tmp_path / 'batched')
    assert list(alone) == list(batched) and len({a.tobytes() for a in alone.values()}) == 6
    diff = np.stack([np.abs(alone[name] - batched[name]) for name in alone])
    if dtype == torch.float64:
        assert diff.max() <= 1  # pixel-equal within 1/255
    else:  # float32: the batch size changes the rounding of every matrix product; the random tiny model at
        assert (diff <= 1).mean() > 0.999 and diff.max() <= 3  # guidance 7.5 amplifies it in rare pixels


@needs_dreambench
def test_a_call_interrupted_half_way_is_completed_with_the_same_images(tiny_cfg, tiny_path, tmp_path, clip_folder,
                                                                       dino_folder):  # noqa: F811
    evaluator = DreamBenchEvaluator(small_dreambench(tmp_path / 'dreambench', ['dog7']), clip_folder, dino_folder)
    model = CountingCalls(method_model('vico', tiny_cfg))  # float32: exactly the same bits, not within 1/255
    folder = tmp_path / 'images'
    evaluator.generate(model, 'dog7', str(folder), num_images=2, batch_size=4, **SAMPLING)  # calls: prompts 0-1, 2
    before = images(folder)
    stamps = {name: os.path.getmtime(folder / name) for name in before}
    for name in ('00_01.png', '01_00.png', '02_00.png', '02_01.png'):
        os.remove(folder / name)
    model.calls.clear()
    evaluator.generate(model, 'dog7', str(folder), num_images=2, batch_size=4, **SAMPLING)
    assert model.calls == [4, 2]  # each call again as it was: the same batch, so the same bits
    after = images(folder)
    assert all(np.array_equal(before[name], after[name]) for name in before)
    assert all(os.path.getmtime(folder / name) == stamps[name] for name in ('00_00.png', '01_01.png'))


def test_toy_benchmark_scores_subject_and_context_of_the_images_in_prompt_order(tmp_path, clip_folder,
                                                                                 dino_folder):  # noqa: F811
    """data/toybench names its pixel scorers: renders of the subject on each prompt's background score as
    subject in context; the same renders under rotated prompts lose context; its photos are copies."""
    from mmagic_vico.evaluation.evaluator import scores_table
    from mmagic_vico.toyworld.base_model import render_many
    from mmagic_vico.toyworld.concepts import concept_objects
    from mmagic_vico.toyworld.fidelity import prompt_background
    from mmagic_vico.toyworld.render import Scene
    evaluator = DreamBenchEvaluator(os.path.join(REPO, 'data', 'toybench'), clip_folder, dino_folder)
    prompts = evaluator.protocol.text_prompts('star_robot')
    scenes = [Scene(prompt_background(p), 'star_robot', 'none', 5 * 10 ** 6 + i) for i, p in enumerate(prompts)]
    renders, _ = render_many(scenes, processes=1, objects=concept_objects())

    def save(folder, arrays):
        os.makedirs(folder)
        paths = [os.path.join(folder, image_name(p, 0)) for p in range(len(arrays))]
        for path, a in zip(paths, arrays):
            Image.fromarray(a).save(path)
        return paths

    in_place = evaluator.score('star_robot', save(tmp_path / 'a', renders), num_images=1)
    assert in_place['context'] >= 7 / 8 and in_place['subject'] >= 7 / 8 and in_place['copy'] == 0, in_place
    rotated = evaluator.score('star_robot', save(tmp_path / 'b', list(renders[1:]) + [renders[0]]), num_images=1)
    assert rotated['context'] <= 1 / 8 and rotated['subject'] >= 7 / 8, rotated
    photos = [np.asarray(Image.open(p).convert('RGB')) for p in
              sorted(glob.glob(os.path.join(REPO, 'data', 'toybench', 'star_robot', '*.png')))]
    copied = evaluator.score('star_robot', save(tmp_path / 'c', (photos * 2)[:len(prompts)]), num_images=1)
    assert copied['copy'] == 1, copied
    table = scores_table({'in place': in_place, 'rotated': rotated})
    assert table.splitlines()[0] == '| subject | CLIP-T | CLIP-I | DINO | context | subject | subject-cos | copy |'
