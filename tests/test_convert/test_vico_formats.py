"""The ViCo authors' and mmagic's weights, built in their own layouts from the tiny model, convert and
sample as the same weights in ours."""
import numpy as np
import pytest
import torch

from mmagic_vico.registry import MODELS
from tools.convert_weights import main as convert

FAST = dict(height=64, width=64, num_inference_steps=3, guidance_scale=7.5, show_progress=False)
#: The authors' LDM output block of each of our default layers (their cross_attention.pt keys).
LDM_OUTPUT_BLOCK = {'up_blocks.1.attentions.1': 4, 'up_blocks.2.attentions.0': 6, 'up_blocks.2.attentions.2': 8,
                    'up_blocks.3.attentions.1': 10}
MARK = '.transformer_blocks.1.image_cross_attention.'


def trained(model):
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    return model


def samples(model, reference):
    return np.stack([np.asarray(i) for i in model.infer(['a photo of S*'], reference, seed=7, **FAST)['samples']])


def split(state):
    """Our trainable state -> ({layer: {param: tensor}}, embedding)."""
    layers, embedding = {}, None
    for key, value in state.items():
        if MARK in key:
            layer, param = key.removeprefix('unet.').split(MARK)
            layers.setdefault(layer, {})[param] = value
        else:
            embedding = value
    return layers, embedding


def test_the_authors_files_convert_and_sample_as_ours(tiny_cfg, tmp_path, reference_image):
    torch.manual_seed(0)
    vico = trained(MODELS.build(tiny_cfg.model))
    layers, embedding = split(vico.trainable_state_dict())
    assert set(layers) == set(LDM_OUTPUT_BLOCK)
    cross_attention = {f'diffusion_model.output_blocks.{LDM_OUTPUT_BLOCK[layer]}.1.image_cross_attention.{p}': v.clone()
                       for layer, params in layers.items() for p, v in params.items()}
    assert {p.rsplit('.', 1)[0] for p in layers['up_blocks.1.attentions.1']} == {
        'attn1.to_q', 'attn1.to_k', 'attn1.to_v', 'attn1.to_out.0', 'attn2.to_q', 'attn2.to_k', 'attn2.to_v',
        'attn2.to_out.0', 'ff.net.0.proj', 'ff.net.2', 'norm1', 'norm2', 'norm3'}  # LDM's BasicTransformerBlock
    folder = tmp_path / 'checkpoints'
    folder.mkdir()
    torch.save(cross_attention, folder / 'cross_attention-400.pt')
    torch.save({'string_to_token': {'*': torch.tensor(265)},  # textual inversion's EmbeddingManager.save
                'string_to_param': torch.nn.ParameterDict({'*': torch.nn.Parameter(embedding.clone())})},
               folder / 'embeddings_gs-400.pt')
    out = convert(['vico-original', 'vico', str(folder / 'cross_attention-400.pt'), str(tmp_path / 'dog.safetensors')])
    torch.manual_seed(1)
    fresh = MODELS.build(tiny_cfg.model)
    fresh.load_vico_weights(out)
    assert np.array_equal(samples(fresh, reference_image), samples(vico, reference_image))


def test_a_code_carrying_embeddings_file_is_refused(tmp_path):
    class Runs:
        def __reduce__(self):
            return (open, (str(tmp_path / 'ran'), 'w'))
    torch.save({'diffusion_model.output_blocks.4.1.image_cross_attention.norm1.weight': torch.ones(2)},
               tmp_path / 'cross_attention.pt')
    torch.save({'string_to_param': {'*': Runs()}}, tmp_path / 'embeddings.pt')
    with pytest.raises(ValueError, match='embeddings.pt.*could run any code'):
        convert(['vico-original', 'vico', str(tmp_path), str(tmp_path / 'out.safetensors')])
    assert not (tmp_path / 'ran').exists() and not (tmp_path / 'out.safetensors').exists()


def test_mmagic_weights_load_only_into_mmagic_placement(tiny_cfg, tmp_path, reference_image):
    torch.manual_seed(0)
    vico = trained(MODELS.build(tiny_cfg.model | dict(image_cross_layers='mmagic')))
    # the spec's "mmagic port deviations": flags read in named_modules() order
    assert vico.image_cross_layer_names == ['up_blocks.1.attentions.2', 'up_blocks.2.attentions.1',
                                            'up_blocks.3.attentions.0', 'up_blocks.3.attentions.2']
    layers, embedding = split(vico.trainable_state_dict())
    state = {f'unet.model.{layer}.image_cross_attention.{p}': v.clone()  # DiffusersWrapper.model, ViCoTransformer2D
             for layer, params in layers.items() for p, v in params.items()}
    state['text_encoder.model.text_model.embeddings.token_embedding.trainable_embeddings.S*'] = embedding.clone()
    torch.save(state, tmp_path / 'dog.pth')  # mmagic's README: torch.save(extract_vico_parameters(...))
    out = convert(['vico-mmagic', 'vico', str(tmp_path / 'dog.pth'), str(tmp_path / 'dog.safetensors')])
    torch.manual_seed(1)
    fresh = MODELS.build(tiny_cfg.model | dict(image_cross_layers='mmagic'))
    fresh.load_vico_weights(out)
    assert np.array_equal(samples(fresh, reference_image), samples(vico, reference_image))
    default = MODELS.build(tiny_cfg.model)
    with pytest.raises(ValueError, match="(the 'mmagic' placement).*image_cross_layers='mmagic'"):
        default.load_vico_weights(out)
    with pytest.raises(ValueError, match="one of \\('original', 'mmagic'\\)"):
        MODELS.build(tiny_cfg.model | dict(image_cross_layers='mmagik'))


def test_the_authors_cross_attention_without_its_embeddings_names_the_missing_file(tmp_path):
    torch.save({'diffusion_model.output_blocks.4.1.image_cross_attention.norm1.weight': torch.ones(2)},
               tmp_path / 'cross_attention-400.pt')
    with pytest.raises(FileNotFoundError, match='embeddings_gs-400.pt.*--embeddings'):
        convert(['vico-original', 'vico', str(tmp_path / 'cross_attention-400.pt'), str(tmp_path / 'o.safetensors')])
