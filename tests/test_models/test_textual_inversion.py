import os

import numpy as np
import pytest
import torch
from mmengine import Config
from mmengine.optim import OptimWrapper

from mmagic_vico.registry import MODELS

from ..conftest import REPO
from ..helpers.tiny_pipeline import stock_pipeline

TI_TINY = os.path.join(REPO, 'configs', 'textual_inversion', 'textual_inversion_tiny.py')


@pytest.fixture
def ti_cfg(tiny_cfg, tiny_path):
    return Config.fromfile(TI_TINY)


def build(cfg, **changes):
    torch.manual_seed(0)
    return MODELS.build(cfg.model | changes)


@pytest.mark.parametrize('num_vectors', [1, 3])
def test_three_steps_change_only_the_embedding(ti_cfg, num_vectors):
    ti = build(ti_cfg, num_vectors=num_vectors)
    trainable = [n for n, p in ti.named_parameters() if p.requires_grad]
    assert trainable == ['text_encoder.embeddings.token_embedding.trainable_embeddings']
    assert ti.text_encoder.get_input_embeddings().trainable_embeddings.shape[0] == num_vectors
    before = {n: p.detach().clone() for n, p in ti.named_parameters()}
    optim = OptimWrapper(torch.optim.AdamW([p for p in ti.parameters() if p.requires_grad], lr=1e-2))
    g = torch.Generator().manual_seed(0)
    data = dict(inputs=dict(img=[torch.randint(0, 256, (3, 64, 64), generator=g, dtype=torch.uint8)] * 2),
                data_samples=[dict(prompt='a photo of a S*'), dict(prompt='a rendering of the S*')])
    for _ in range(3):
        log = ti.train_step(data, optim)
    assert set(log) == {'loss', 'loss_diffusion'}
    changed = {n for n, p in ti.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed == set(trainable)
    ids = ti.tokenize(['a photo of S*'])[0].tolist()
    assert sum(i >= 49408 for i in ids) == num_vectors  # 'S*' stands for all its vectors


@pytest.mark.parametrize('num_vectors', [1, 2])
def test_learned_embeds_load_in_diffusers_and_reproduce_our_samples(ti_cfg, tiny_path, tmp_path, num_vectors):
    ti = build(ti_cfg, num_vectors=num_vectors)
    with torch.no_grad():
        emb = ti.text_encoder.get_input_embeddings().trainable_embeddings
        emb.add_(torch.randn_like(emb))  # as if trained
    path = ti.save_learned_embeds(str(tmp_path / 'learned_embeds.safetensors'))
    kwargs = dict(height=64, width=64, num_inference_steps=3, guidance_scale=7.5, num_images_per_prompt=2)
    ours = ti.infer(['a photo of S*', 'S* on the beach'], seed=4, show_progress=False, **kwargs)['samples']
    pipe = stock_pipeline(tiny_path)
    pipe.load_textual_inversion(path)
    # diffusers expands 'S*' to its vectors only when tokenizer.tokenize keeps the case (transformers 5
    # lower-cases it), so the multi-vector prompt names every vector token, as diffusers' docs allow
    tokens = ' '.join(['S*'] + [f'S*_{i}' for i in range(1, num_vectors)])
    prompts = [p.replace('S*', tokens) for p in ['a photo of S*', 'S* on the beach']]
    theirs = pipe(prompts, generator=torch.Generator().manual_seed(4), **kwargs).images
    assert np.array_equal(np.stack([np.asarray(i) for i in ours]), np.stack([np.asarray(i) for i in theirs]))


def test_weights_of_another_method_do_not_load(ti_cfg, tiny_cfg, tmp_path):
    vico = MODELS.build(tiny_cfg.model)
    path = vico.save_vico_weights(str(tmp_path / 'vico.safetensors'))
    with pytest.raises(ValueError, match="method='ViCo'"):
        build(ti_cfg).load_weights(path)
