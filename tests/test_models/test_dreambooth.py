import os

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from mmengine import Config
from mmengine.optim import OptimWrapper

from mmagic_vico.models.dreambooth import generate_class_images
from mmagic_vico.registry import MODELS

from ..conftest import REPO

DB_TINY = os.path.join(REPO, 'configs', 'dreambooth', 'dreambooth_tiny.py')


@pytest.fixture
def db_cfg(tiny_cfg, tiny_path):
    return Config.fromfile(DB_TINY)


def batch():
    g = torch.Generator().manual_seed(0)
    img = [torch.randint(0, 256, (3, 64, 64), generator=g, dtype=torch.uint8) for _ in range(2)]
    return dict(inputs=dict(img=img, class_img=list(reversed(img))),
                data_samples=[dict(prompt='a photo of sks toy')] * 2)


@pytest.mark.parametrize('train_text_encoder', [False, True])
def test_three_steps_change_exactly_the_unet_and_optionally_the_text_encoder(db_cfg, train_text_encoder):
    db = MODELS.build(db_cfg.model | dict(train_text_encoder=train_text_encoder, gradient_checkpointing=False))
    names = {n for n, p in db.named_parameters() if p.requires_grad}
    parts = ('unet.', 'text_encoder.') if train_text_encoder else ('unet.',)
    assert names == {n for n, _ in db.named_parameters() if n.startswith(parts)}
    before = {n: p.detach().clone() for n, p in db.named_parameters()}
    optim = OptimWrapper(torch.optim.AdamW([p for p in db.parameters() if p.requires_grad], lr=1e-3))
    for _ in range(3):
        log = db.train_step(batch(), optim)
    assert set(log) == {'loss', 'loss_diffusion', 'loss_prior'}
    changed = {n for n, p in db.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed and changed <= names
    assert all(n.startswith(parts) for n in changed)
    assert any(n.startswith('text_encoder.') for n in changed) == train_text_encoder


def test_prior_loss_weight_zero_drops_the_prior_term(db_cfg):
    db = MODELS.build(db_cfg.model | dict(prior_loss_weight=0.0))
    data = db.data_preprocessor(batch(), True)
    assert set(db.loss(data['inputs'], data['data_samples'])) == {'loss_diffusion'}


def test_class_images_are_generated_once_and_resumed(db_cfg, tmp_path):
    db = MODELS.build(db_cfg.model)
    kw = dict(num_inference_steps=2, height=64, width=64, batch_size=2)
    folder = str(tmp_path / 'class')
    assert generate_class_images(db, 'a photo of toy', folder, 3, **kw) == 3
    first = open(os.path.join(folder, 'class_00001.png'), 'rb').read()
    assert generate_class_images(db, 'a photo of toy', folder, 3, **kw) == 0  # cached
    os.remove(os.path.join(folder, 'class_00001.png'))  # as if interrupted there
    assert generate_class_images(db, 'a photo of toy', folder, 3, **kw) == 1
    assert open(os.path.join(folder, 'class_00001.png'), 'rb').read() == first  # seeded per image
    assert sorted(os.listdir(folder)) == ['.manifest.json', 'class_00000.png', 'class_00001.png', 'class_00002.png']


def test_exported_unet_loads_in_diffusers_and_reproduces_our_samples(db_cfg, tiny_path, tmp_path):
    db = MODELS.build(db_cfg.model)
    with torch.no_grad():
        for p in db.unet.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # as if fine-tuned
    folder = db.save_pretrained(str(tmp_path / 'diffusers'))
    kwargs = dict(height=64, width=64, num_inference_steps=3, guidance_scale=7.5)
    ours = db.infer('a photo of sks toy', seed=2, show_progress=False, **kwargs)['samples']
    pipe = StableDiffusionPipeline.from_pretrained(
        tiny_path, unet=UNet2DConditionModel.from_pretrained(folder, subfolder='unet'),
        scheduler=DDIMScheduler.from_pretrained(tiny_path, subfolder='scheduler'),
        safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe('a photo of sks toy', generator=torch.Generator().manual_seed(2), **kwargs).images
    assert np.array_equal(np.asarray(ours[0]), np.asarray(theirs[0]))


LORA_TINY = os.path.join(REPO, 'configs', 'dreambooth', 'dreambooth_lora_tiny.py')


def test_lora_trains_only_the_adapters_and_loads_in_diffusers(tiny_cfg, tiny_path, tmp_path):
    cfg = Config.fromfile(LORA_TINY)
    torch.manual_seed(0)
    lora = MODELS.build(cfg.model | dict(gradient_checkpointing=False))
    names = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert names and all('lora_' in n for n in names)
    before = {n: p.detach().clone() for n, p in lora.named_parameters()}
    optim = OptimWrapper(torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-2))
    for _ in range(3):
        lora.train_step(batch(), optim)
    changed = {n for n, p in lora.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed and changed <= names
    path = lora.save_lora_weights(str(tmp_path))
    assert os.path.basename(path) == 'pytorch_lora_weights.safetensors'
    kwargs = dict(height=64, width=64, num_inference_steps=3, guidance_scale=7.5)
    ours = lora.infer('a photo of sks toy', seed=1, show_progress=False, **kwargs)['samples']
    pipe = StableDiffusionPipeline.from_pretrained(
        tiny_path, scheduler=DDIMScheduler.from_pretrained(tiny_path, subfolder='scheduler'),
        safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    plain = pipe('a photo of sks toy', generator=torch.Generator().manual_seed(1), **kwargs).images
    pipe.load_lora_weights(str(tmp_path))
    theirs = pipe('a photo of sks toy', generator=torch.Generator().manual_seed(1), **kwargs).images
    assert np.abs(np.asarray(ours[0], dtype=int) - np.asarray(theirs[0], dtype=int)).max() <= 1
    assert np.abs(np.asarray(plain[0], dtype=int) - np.asarray(theirs[0], dtype=int)).max() > 1  # LoRA acts


def test_8bit_adam_falls_back_to_adamw_with_a_warning(db_cfg, monkeypatch):
    from mmagic_vico.engine import optimizer
    monkeypatch.setattr(optimizer, 'bitsandbytes_available', lambda: False)  # as on a machine without it
    db = MODELS.build(db_cfg.model)
    cfg = dict(type='OptimWrapper', optimizer=dict(type='AdamW8bit', lr=1e-5))
    FrozenBaseOptimWrapperConstructor = optimizer.FrozenBaseOptimWrapperConstructor
    with pytest.warns(UserWarning, match='bitsandbytes'):
        wrapper = FrozenBaseOptimWrapperConstructor(cfg)(db)
    assert type(wrapper.optimizer).__name__ == 'AdamW'


def test_fine_tuned_model_as_one_compvis_file_round_trips(db_cfg, tmp_path):
    """The single-file export (fine-tuned UNet, frozen VAE and text encoder) loads back as pretrained_model."""
    db = MODELS.build(db_cfg.model)
    with torch.no_grad():
        for p in db.unet.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # as if fine-tuned
    path = db.save_single_file(str(tmp_path / 'dreambooth.safetensors'))
    again = MODELS.build(db_cfg.model | dict(pretrained_model=path))
    for name in ('unet', 'vae', 'text_encoder'):
        ours, theirs = getattr(db, name).state_dict(), getattr(again, name).state_dict()
        assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours), name
    kwargs = dict(height=64, width=64, num_inference_steps=3, guidance_scale=7.5, seed=2, show_progress=False)
    ours = np.asarray(db.infer('a photo of sks toy', **kwargs)['samples'][0], dtype=int)
    theirs = np.asarray(again.infer('a photo of sks toy', **kwargs)['samples'][0], dtype=int)
    assert np.abs(ours - theirs).max() <= 1  # CPU kernels round by weight-buffer alignment (~1e-6 per UNet call)


def test_the_identifier_is_the_prompt_token_of_captions_and_benchmarks(db_cfg, tiny_path):
    """DreamBench prompts DreamBooth with its identifier, the word its captions were trained with;
    ``--cfg-options identifier=...`` changes both."""
    from mmagic_vico.models import StableDiffusion
    from mmagic_vico.utils.config import apply_cfg_options
    from mmagic_vico.utils.errors import InvalidValueError
    cfg = apply_cfg_options(db_cfg, {'identifier': 'zwx'})
    assert cfg.train_dataloader.dataset.placeholder == 'zwx'
    assert MODELS.build(cfg.model).prompt_token == 'zwx'
    assert MODELS.build(Config.fromfile(DB_TINY).model).prompt_token == 'sks'
    assert StableDiffusion(tiny_path).prompt_token is None  # the base: the class alone
    with pytest.raises(InvalidValueError, match='one rare word'):
        MODELS.build(dict(Config.fromfile(DB_TINY).model, identifier='two words'))
