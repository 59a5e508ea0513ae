import math

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from mmengine.optim import OptimWrapper
from PIL import Image

from mmagic_vico.models.vico.object_mask import OTSU_THRESHOLDS
from mmagic_vico.models.vico.vico import TRAINABLE_MARKERS
from mmagic_vico.registry import MODELS

from .test_object_mask import otsu_by_hand

FAST = dict(height=64, width=64, num_inference_steps=3, show_progress=False)


def pixels(samples):
    return np.stack([np.asarray(s) for s in samples]).astype(np.int16)


def stock_pipeline(vico, path, unet=None):
    """diffusers' own pipeline on the same components (a freshly loaded UNet and VAE by default)."""
    return StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(path, subfolder='vae'), text_encoder=vico.text_encoder,
        tokenizer=vico.tokenizer, unet=unet or UNet2DConditionModel.from_pretrained(path, subfolder='unet'),
        scheduler=DDIMScheduler.from_pretrained(path, subfolder='scheduler'), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)


@pytest.mark.parametrize('guidance, eta, size', [(7.5, 0.0, (64, 96)), (1.0, 0.0, (64, 64)), (3.0, 0.7, (80, 64))])
def test_image_attention_off_equals_stable_diffusion_pipeline(vico, tiny_path, guidance, eta, size):
    prompts = ['a photo of S* on the beach', 'a red toy']
    h, w = size
    kwargs = dict(height=h, width=w, num_inference_steps=4, guidance_scale=guidance, eta=eta, num_images_per_prompt=2)
    ours = vico.infer(prompts, None, seed=7, image_cross_attention_scale=0, show_progress=False, **kwargs)['samples']
    assert [s.size for s in ours] == [(w, h)] * 4
    for unet in (None, vico.unet):  # a stock UNet, and ours with the store closed
        pipe = stock_pipeline(vico, tiny_path, unet)
        pipe.set_progress_bar_config(disable=True)
        theirs = pipe(prompts, generator=torch.Generator().manual_seed(7), **kwargs).images
        assert np.array_equal(pixels(ours), pixels(theirs))


def test_guidance_one_still_denoises_and_image_attention_changes_samples(vico, reference_image):
    one = vico.infer('a photo of S*', reference_image, guidance_scale=1.0, seed=0, **FAST)['samples']
    off = vico.infer('a photo of S*', reference_image, guidance_scale=1.0, seed=0,
                     image_cross_attention_scale=0, **FAST)['samples']
    assert np.abs(pixels(one) - pixels(off)).max() > 0
    fewer = vico.infer('a photo of S*', reference_image, guidance_scale=1.0, seed=0,
                       **(FAST | dict(num_inference_steps=1)))['samples']
    assert np.abs(pixels(one) - pixels(fewer)).max() > 0


def two_stream_unet(vico, ref_latents, context, scale):
    """The UNet's output for [generated; reference] rows with ViCo's store open."""
    g = ref_latents.shape[0]
    ids = vico.tokenize(['a photo of S*'] * g)
    ph, eot = vico.token_positions(ids)
    x = torch.randn_like(ref_latents, generator=None)
    with vico.store.open(g, torch.arange(g), ph, eot, scale=scale):
        return vico.unet(torch.cat([x, ref_latents]), 500, encoder_hidden_states=torch.cat([context, context])).sample


@torch.no_grad()
def test_reference_stream_is_the_same_with_and_without_image_attention(vico, tiny_path):
    torch.manual_seed(0)
    ref = torch.randn(2, 4, 8, 8)
    context = vico.encode_text(vico.tokenize(['a photo of S*'] * 2))
    with_imca = two_stream_unet(vico, ref, context, scale=1.0)[2:]
    without = two_stream_unet(vico, ref, context, scale=0.0)[2:]
    torch.testing.assert_close(with_imca, without, rtol=0, atol=0)
    stock = UNet2DConditionModel.from_pretrained(tiny_path, subfolder='unet')
    alone = stock(ref, 500, encoder_hidden_states=context).sample
    torch.testing.assert_close(with_imca, alone, rtol=1e-3, atol=2e-4)  # eager vs fused attention


@torch.no_grad()
def test_mask_is_otsu_of_the_reference_head_mean_placeholder_map(vico, reference_image):
    captured = {}
    layer = vico.image_cross_layer_names[-1]
    attn2 = vico.unet.get_submodule(layer).transformer_blocks[0].attn2

    def hook(module, args, kwargs, output):
        captured.setdefault('calls', []).append((args[0], kwargs['encoder_hidden_states']))
    handle = attn2.register_forward_hook(hook, with_kwargs=True)
    prompts = ['a photo of S*', 'a very long and detailed prompt with a S* in a garden', 'no placeholder here']
    vico.infer(prompts, reference_image, guidance_scale=3.0, **(FAST | dict(num_inference_steps=1)))
    handle.remove()
    hidden, context = captured['calls'][-1]
    ids = vico.tokenize(prompts)
    ph, eot = vico.token_positions(ids)
    eos = vico.tokenizer.eos_token_id
    assert eot.tolist() == [r.index(eos) for r in ids.tolist()]
    assert ph.tolist() == [r.index(vico.placeholder_id) if vico.placeholder_id in r else r.index(eos)
                           for r in ids.tolist()]
    # by hand: the reference rows are the last 2P of the batch (unconditional half first)
    g = hidden.shape[0] - 2 * len(prompts)
    q = attn2.to_q(hidden[g:]).unflatten(-1, (attn2.heads, -1)).transpose(1, 2)
    k = attn2.to_k(context[g:]).unflatten(-1, (attn2.heads, -1)).transpose(1, 2)
    probs = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(-1).mean(1)  # (2P, N, L)
    columns = torch.cat([ph, ph])  # the unconditional half reads the conditional prompt's columns
    expected = probs[torch.arange(len(columns)), :, columns]
    recorded_ph, recorded_eot = vico.store.maps[layer]
    torch.testing.assert_close(recorded_ph, expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(recorded_eot, probs[torch.arange(len(columns)), :, torch.cat([eot, eot])],
                               rtol=1e-4, atol=1e-6)
    mask = vico.store.masks[layer]
    for row, got in zip(recorded_ph.tolist(), mask.tolist()):
        assert got == otsu_by_hand(row)
    assert len(OTSU_THRESHOLDS) == 10


def test_three_steps_change_exactly_the_trainable_parameters(vico):
    names = [n for n, p in vico.named_parameters() if p.requires_grad]
    assert names and all(any(m in n for m in TRAINABLE_MARKERS) for n in names)
    assert any('trainable_embeddings' in n for n in names)
    before = {n: p.detach().clone() for n, p in vico.named_parameters()}
    optim = OptimWrapper(torch.optim.AdamW([p for p in vico.parameters() if p.requires_grad], lr=1e-3))
    g = torch.Generator().manual_seed(0)
    data = dict(inputs=dict(img=[torch.randint(0, 256, (3, 64, 64), generator=g, dtype=torch.uint8) for _ in range(2)],
                            img_ref=[torch.randint(0, 256, (3, 64, 64), generator=g, dtype=torch.uint8) for _ in range(2)]),
                data_samples=[dict(prompt='a photo of a S*'), dict(prompt='a rendering of the S*')])
    for _ in range(3):
        log = vico.train_step(data, optim)
    assert set(log) >= {'loss', 'loss_diffusion', 'loss_reg'} and log['loss_reg'] > 0
    changed = {n for n, p in vico.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed == set(names)


def test_regularizer_reaches_the_placeholder_embedding(vico):
    img = torch.rand(1, 3, 64, 64) * 2 - 1
    losses = vico.loss(dict(img=img, img_ref=img), [dict(prompt='a photo of S*')])
    losses['loss_reg'].backward()
    emb = dict(vico.named_parameters())['text_encoder.embeddings.token_embedding.trainable_embeddings']
    assert emb.grad is not None and emb.grad.abs().sum() > 0


def test_samples_are_prompt_major_and_shared_reference_matches_single_prompt(vico, reference_image):
    latents = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    both = vico.infer(['a photo of S*', 'a S* on the beach'], reference_image, num_images_per_prompt=2,
                      latents=latents, seed=0, **FAST)['samples']
    second = vico.infer(['a S* on the beach'], reference_image, num_images_per_prompt=2, latents=latents[2:],
                        seed=0, **FAST)['samples']
    assert len(both) == 4
    assert np.abs(pixels(both[2:]) - pixels(second)).max() <= 1


@pytest.mark.parametrize('mode', ['RGBA', 'L', 'CMYK', 'P', 'I;16'])
def test_reference_of_any_mode_and_size(vico, mode):
    array = (np.random.default_rng(0).random((37, 51)) * 255).astype(np.uint8)
    image = Image.fromarray(array, 'L').convert(mode if mode != 'I;16' else 'I')
    if mode == 'I;16':
        image = Image.fromarray(array.astype('<u2') * 257)
        assert image.mode == 'I;16'
    out = vico.infer('a photo of S*', image, seed=0, **FAST)['samples']
    assert out[0].size == (64, 64) and out[0].mode == 'RGB'


def test_prompt_without_placeholder_warns(vico, reference_image):
    with pytest.warns(UserWarning, match='placeholder'):
        vico.infer('a photo of a toy', reference_image, seed=0, **FAST)


def test_progress_bar_and_bad_arguments(vico, reference_image, capsys):
    vico.infer('a S*', reference_image, seed=0, **(FAST | dict(show_progress=True)))
    assert 'ViCo sampling' in capsys.readouterr().err
    for bad, match in [(dict(height=60), 'height=60'), (dict(num_inference_steps=0), 'num_inference_steps'),
                       (dict(num_images_per_prompt=0), 'num_images_per_prompt')]:
        with pytest.raises(ValueError, match=match):
            vico.infer('a S*', reference_image, **(FAST | bad))
    with pytest.raises(ValueError, match='image_reference is required'):
        vico.infer('a S*', None, **FAST)


def test_save_load_round_trip_reproduces_samples(vico, tiny_cfg, reference_image, tmp_path):
    with torch.no_grad():
        for p in vico.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    path = vico.save_vico_weights(str(tmp_path / 'w.safetensors'))
    expected = vico.infer('a photo of S*', reference_image, seed=5, **FAST)['samples']
    torch.manual_seed(123)  # a different random init of the fresh model's image attention
    fresh = MODELS.build(tiny_cfg.model)
    fresh.load_vico_weights(path)
    assert np.array_equal(pixels(fresh.infer('a photo of S*', reference_image, seed=5, **FAST)['samples']),
                          pixels(expected))
    # the seed README's way: a plain state dict through load_state_dict(strict=False)
    other = MODELS.build(tiny_cfg.model)
    missing, unexpected = other.load_state_dict(vico.trainable_state_dict(), strict=False)
    assert not unexpected
    assert np.array_equal(pixels(other.infer('a photo of S*', reference_image, seed=5, **FAST)['samples']),
                          pixels(expected))


def test_loading_weights_of_another_placeholder_or_layer_list_fails(vico, tiny_cfg, tmp_path):
    path = vico.save_vico_weights(str(tmp_path / 'w.safetensors'))
    other = MODELS.build(tiny_cfg.model | dict(placeholder='<sks>'))
    with pytest.raises(ValueError, match="placeholder='S\\*'"):
        other.load_vico_weights(path)
    layers = [0] * 8 + [1, 1, 0, 0, 0, 0, 0, 1]
    other = MODELS.build(tiny_cfg.model | dict(image_cross_layers=layers))
    with pytest.raises(ValueError, match='image_cross_layers='):
        other.load_vico_weights(path)
    broken = tmp_path / 'broken.safetensors'
    broken.write_bytes(open(path, 'rb').read()[:100])
    with pytest.raises(ValueError, match='truncated or corrupt'):
        vico.load_vico_weights(str(broken))


@pytest.mark.parametrize('change, match', [
    (dict(initialize_token='teddy bear'), 'exactly one'),
    (dict(initialize_token='xqzjvw'), 'exactly one'),
    (dict(initialize_token=''), 'initialize_token'),
    (dict(placeholder='dog'), 'already a token'),
    (dict(placeholder='S *'), 'without spaces'),
])
def test_bad_tokens_fail_at_build_time(tiny_cfg, tiny_path, change, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(tiny_cfg.model | change)
