import os

import numpy as np
import pytest
import torch
from mmengine import Config
from safetensors.torch import load_file
from transformers import CLIPImageProcessor, CLIPModel

from mmagic_vico.models.aesthetic_gradients import make_aesthetic_embedding
from mmagic_vico.models.tiny_sd import build_tiny_clip
from mmagic_vico.registry import MODELS
from mmagic_vico.utils.image import list_images, to_rgb

from ..conftest import REPO

CONCEPT = os.path.join(REPO, 'data', 'vico', 'tiny_toy')
FAST = dict(height=64, width=64, num_inference_steps=2, show_progress=False, seed=0)


@pytest.fixture(scope='module')
def tiny_clip(tmp_path_factory, tiny_path):
    return build_tiny_clip(str(tmp_path_factory.mktemp('clip') / 'tiny_clip'), tiny_path)


@pytest.fixture(scope='module')
def embedding(tiny_clip, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('ae') / 'toy.safetensors')
    make_aesthetic_embedding(CONCEPT, tiny_clip, path)
    return path


def test_embedding_is_the_mean_of_normalised_clip_image_embeddings(tiny_clip, embedding, tiny_path):
    clip = CLIPModel.from_pretrained(tiny_clip)
    processor = CLIPImageProcessor.from_pretrained(tiny_clip)
    images = [to_rgb(p) for p in list_images(CONCEPT)]
    with torch.no_grad():
        out = clip.get_image_features(pixel_values=processor(images=images, return_tensors='pt')['pixel_values'])
        features = getattr(out, 'pooler_output', out)
    expected = torch.stack([f / f.norm() for f in features]).mean(0, keepdim=True)
    saved = load_file(embedding)['aesthetic_embedding']
    assert saved.shape == (1, 32)
    torch.testing.assert_close(saved, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('config', ['vico/vico_tiny.py', 'textual_inversion/textual_inversion_tiny.py',
                                    'dreambooth/dreambooth_tiny.py'])
def test_sampling_with_aesthetic_gradients_on_any_method(config, embedding, reference_image):
    cfg = Config.fromfile(os.path.join(REPO, 'configs', config))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    before = {k: v.clone() for k, v in model.state_dict(keep_vars=False).items()}
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    extra = dict(image_reference=reference_image) if model.needs_reference else {}
    prompt = 'a photo of S*' if model.placeholder else 'a photo of sks toy'
    contexts = []
    predict = model.predict_noise

    def recording(latents, t, context, **kw):  # sees what the UNet is conditioned on
        contexts.append(context.clone())
        return predict(latents, t, context, **kw)
    model.predict_noise = recording
    plain = model.infer(prompt, **extra, **FAST)['samples']
    tuned = model.infer(prompt, aesthetic_embedding=embedding, aesthetic_steps=3, aesthetic_lr=1e-2, **extra,
                        **FAST)['samples']
    uncond_plain, cond_plain = contexts[0].chunk(2)
    uncond_tuned, cond_tuned = contexts[-1].chunk(2)
    assert torch.equal(uncond_plain, uncond_tuned)  # the unconditional branch is untouched
    assert (cond_plain - cond_tuned).abs().max() > 1e-4  # the conditional one moved
    assert np.abs(np.asarray(plain[0], dtype=int) - np.asarray(tuned[0], dtype=int)).max() > 0
    for name, value in model.named_parameters():  # the model's own weights are bit-identical
        assert torch.equal(value.detach(), frozen_before[name]), name
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_tensor_embedding_needs_a_clip_folder(tiny_cfg, tiny_path):
    model = MODELS.build(Config.fromfile(os.path.join(REPO, 'configs', 'textual_inversion',
                                                      'textual_inversion_tiny.py')).model)
    with pytest.raises(ValueError, match='aesthetic_clip'):
        model.infer('a photo of S*', aesthetic_embedding=torch.randn(1, 32), aesthetic_steps=1, **FAST)


def test_tools_make_the_embedding_and_sample_with_it(tiny_clip, tmp_path, capsys):
    from tools.infer import main as infer
    from tools.make_aesthetic_embedding import main as make
    out = tmp_path / 'ae.safetensors'
    make([CONCEPT, str(out), '--clip', tiny_clip])
    assert load_file(str(out))['aesthetic_embedding'].shape == (1, 32)
    config = os.path.join(REPO, 'configs', 'aesthetic_gradients', 'aesthetic_gradients_tiny.py')
    samples = infer([config, '--prompt', 'a photo of a toy', '--steps', '2', '--height', '64', '--width', '64',
                     '--aesthetic-embedding', str(out), '--aesthetic-steps', '2', '--out-dir', str(tmp_path / 's'),
                     '--cfg-options', f'work_dir={tmp_path}'])
    assert len(samples) == 1 and (tmp_path / 's' / 'grid.png').exists()


def test_aesthetic_gradients_model_trains_nothing_and_uses_its_defaults(embedding, tiny_path):
    cfg = Config.fromfile(os.path.join(REPO, 'configs', 'aesthetic_gradients', 'aesthetic_gradients_tiny.py'))
    model = MODELS.build(cfg.model | dict(aesthetic_embedding=embedding, aesthetic_steps=2, aesthetic_lr=1e-2))
    assert not [n for n, p in model.named_parameters() if p.requires_grad]
    steered = model.infer('a photo of a toy', **FAST)['samples']
    plain = model.infer('a photo of a toy', aesthetic_steps=0, **FAST)['samples']
    assert np.abs(np.asarray(steered[0], dtype=int) - np.asarray(plain[0], dtype=int)).max() > 0
    with pytest.raises(ValueError, match='trains nothing'):
        model.loss({}, [])
