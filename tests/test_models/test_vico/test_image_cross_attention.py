import copy

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0

from mmagic_vico.models.tiny_sd import SD15_UNET_CONFIG
from mmagic_vico.models.vico import (DEFAULT_IMAGE_CROSS_LAYERS, ImageCrossAttentionBlock, ViCoAttentionStore,
                                     inject_image_cross_attention, text_transformer_layers)
from mmagic_vico.models.vico.attention_processors import ImageCrossAttnProcessor, ViCoRecordingAttnProcessor

SPEC_LOCATIONS = ['up_blocks.1.attentions.1', 'up_blocks.2.attentions.0', 'up_blocks.2.attentions.2',
                  'up_blocks.3.attentions.1']


@pytest.fixture(scope='module')
def sd15_unet():
    with torch.device('meta'):  # the real architecture, without allocating 3.4 GB
        return UNet2DConditionModel(**SD15_UNET_CONFIG)


def count(module, marker=''):
    return sum(p.numel() for n, p in module.named_parameters() if marker in n)


def test_sd15_default_injection_adds_the_papers_blocks(sd15_unet):
    assert count(sd15_unet) == 859_520_964
    layers = text_transformer_layers(sd15_unet)
    assert len(layers) == 16
    assert [n for n, _ in layers][6] == 'mid_block.attentions.0'  # not iteration order (up before mid)
    with torch.device('meta'):
        names = inject_image_cross_attention(sd15_unet, DEFAULT_IMAGE_CROSS_LAYERS, ViCoAttentionStore())
    assert names == SPEC_LOCATIONS
    assert count(sd15_unet, 'image_cross_attention') == 51_248_960
    owners = {n.split('.transformer_blocks')[0] for n, _ in sd15_unet.named_parameters() if 'image_cross_attention' in n}
    assert sorted(owners) == sorted(SPEC_LOCATIONS)
    for name in SPEC_LOCATIONS:
        layer = sd15_unet.get_submodule(name)
        d = layer.transformer_blocks[0].norm1.weight.shape[0]
        imca = layer.transformer_blocks[1]
        assert isinstance(imca, ImageCrossAttentionBlock)
        assert count(imca) == 20 * d * d + 17 * d
        assert imca.image_cross_attention.attn2.heads == 8
        assert isinstance(layer.transformer_blocks[0].attn2.processor, ViCoRecordingAttnProcessor)
    # base parameter names are untouched: stock checkpoints still load by name
    assert 'up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_k.weight' in dict(sd15_unet.named_parameters())


@pytest.mark.parametrize('flags, error', [([1] * 15, '15 flags'), ([0] * 16, 'selects no layer')])
def test_bad_layer_flags_fail_clearly(flags, error):
    from mmagic_vico.models.tiny_sd import TINY_UNET_CONFIG
    unet = UNet2DConditionModel(**TINY_UNET_CONFIG)
    with pytest.raises(ValueError, match=error):
        inject_image_cross_attention(unet, flags, ViCoAttentionStore())


@pytest.mark.parametrize('fast', [True, False])
def test_background_reference_tokens_get_zero_attention_weight(fast):
    torch.manual_seed(0)
    store = ViCoAttentionStore(fast=fast)
    block = ImageCrossAttentionBlock(16, 8, store, 'layer')
    block.image_cross_attention.attn2.set_processor(ImageCrossAttnProcessor(store))
    g, n = 3, 12
    x, ref = torch.randn(g, n, 16), torch.randn(1, n, 16)
    ph_map = torch.tensor([[0.9] * 4 + [0.01] * 8])  # patches 0..3 are the object
    idx = torch.zeros(1, dtype=torch.long)

    def run(reference):
        with store.open(g, torch.zeros(g, dtype=torch.long), idx, idx) as s:
            s.maps['layer'] = (ph_map, ph_map)
            return block(torch.cat([x, reference]))

    out = run(ref)
    assert store.masks['layer'][0].tolist() == [True] * 4 + [False] * 8
    background_changed = ref.clone()
    background_changed[:, 4:] = torch.randn(1, 8, 16) * 100
    torch.testing.assert_close(run(background_changed)[:g], out[:g], rtol=0, atol=1e-6)
    object_changed = ref.clone()
    object_changed[:, :4] += 1
    assert (run(object_changed)[:g] - out[:g]).abs().max() > 1e-3
    torch.testing.assert_close(out[g:], ref, rtol=0, atol=0)  # the reference stream is never changed
    with store.open(g, torch.zeros(g, dtype=torch.long), idx, idx, scale=0) as s:
        s.maps['layer'] = (ph_map, ph_map)
        torch.testing.assert_close(block(torch.cat([x, ref])), torch.cat([x, ref]), rtol=0, atol=0)


@pytest.mark.parametrize('fast', [True, False])
def test_without_the_object_mask_the_image_attention_sees_every_reference_patch(fast):
    torch.manual_seed(0)
    store = ViCoAttentionStore(fast=fast, object_mask=False)
    block = ImageCrossAttentionBlock(16, 8, store, 'layer')
    block.image_cross_attention.attn2.set_processor(ImageCrossAttnProcessor(store))
    g, n = 3, 12
    x, ref = torch.randn(g, n, 16), torch.randn(1, n, 16)
    ph_map = torch.tensor([[0.9] * 4 + [0.01] * 8])  # Otsu would keep patches 0..3 only

    def run(reference, object_mask=False):
        store.object_mask = object_mask
        with store.open(g, torch.zeros(g, dtype=torch.long), torch.zeros(1, dtype=torch.long),
                        torch.zeros(1, dtype=torch.long)) as s:
            s.maps['layer'] = (ph_map, ph_map)
            return block(torch.cat([x, reference]))[:g]

    out = run(ref)
    assert store.masks['layer'].all() and store.masks['layer'].shape == (1, n)
    # the same block with diffusers' own processor and no mask at all: plain attention over every patch
    plain = copy.deepcopy(block.image_cross_attention)
    plain.attn2.set_processor(AttnProcessor2_0())
    torch.testing.assert_close(out, plain(x, encoder_hidden_states=ref.expand(g, -1, -1)), rtol=1e-5, atol=1e-5)
    for i in range(n):  # each patch on its own, background ones included, moves the output
        changed = ref.clone()
        changed[:, i] += 1
        assert (run(changed) - out).abs().max() > 1e-4, i
    masked = run(ref, object_mask=True)
    assert store.masks['layer'][0].tolist() == [True] * 4 + [False] * 8
    assert (masked - out).abs().max() > 1e-4
