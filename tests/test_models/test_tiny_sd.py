import json
import os

import pytest
import torch
from diffusers import UNet2DConditionModel
from transformers import CLIPTokenizer

from mmagic_vico.models.tiny_sd import SD15_UNET_CONFIG, build_tiny_sd
from mmagic_vico.models.vico import text_transformer_layers

# ids of the original CLIP tokenizer (openai/clip-vit-large-patch14, as shipped with SD 1.5)
CLIP_IDS = {'a photo of S* on the beach': [49406, 320, 1125, 539, 338, 265, 525, 518, 2117, 49407]}


def test_tiny_model_has_sd15_layout_and_real_clip_tokenizer(tiny_path):
    for sub in ('unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler'):
        assert os.path.isdir(os.path.join(tiny_path, sub))
    index = json.load(open(os.path.join(tiny_path, 'model_index.json')))
    assert index['_class_name'] == 'StableDiffusionPipeline'
    assert sorted(os.listdir(os.path.join(tiny_path, 'tokenizer'))) == [
        'merges.txt', 'special_tokens_map.json', 'tokenizer_config.json', 'vocab.json']  # as SD 1.5's folder
    tok = CLIPTokenizer.from_pretrained(tiny_path, subfolder='tokenizer')
    assert len(tok) == 49408 and tok.model_max_length == 77
    for text, ids in CLIP_IDS.items():
        assert tok(text).input_ids == ids
    unet = UNet2DConditionModel.from_pretrained(tiny_path, subfolder='unet')
    assert len(text_transformer_layers(unet)) == 16
    for key in ('down_block_types', 'up_block_types', 'layers_per_block', 'attention_head_dim'):
        assert tuple(unet.config[key]) if isinstance(unet.config[key], (list, tuple)) else unet.config[key] == \
            SD15_UNET_CONFIG[key]
    sched = json.load(open(os.path.join(tiny_path, 'scheduler', 'scheduler_config.json')))
    assert sched['beta_schedule'] == 'scaled_linear' and sched['steps_offset'] == 1


def test_builder_is_deterministic(tmp_path):
    a, b = build_tiny_sd(str(tmp_path / 'a')), build_tiny_sd(str(tmp_path / 'b'))
    for sub, name in (('unet', 'diffusion_pytorch_model.safetensors'), ('text_encoder', 'model.safetensors')):
        assert open(os.path.join(a, sub, name), 'rb').read() == open(os.path.join(b, sub, name), 'rb').read()
    assert not [p for p in os.listdir(tmp_path) if p.startswith('.')]  # no staging folder left behind
    state = torch.random.get_rng_state()
    build_tiny_sd(str(tmp_path / 'c'))
    assert torch.equal(state, torch.random.get_rng_state())  # never seeds globally


def test_missing_tiny_folder_is_built_on_first_use(tmp_path):
    from mmagic_vico.models.sd_loading import load_stable_diffusion
    parts = load_stable_diffusion(str(tmp_path / 'tiny_sd15'))
    assert parts['unet'].config.block_out_channels == (32, 32, 64, 64) or \
        list(parts['unet'].config.block_out_channels) == [32, 32, 64, 64]


def test_unreachable_hub_id_and_bad_folder_say_what_to_do(tmp_path, monkeypatch):
    from mmagic_vico.models.sd_loading import load_stable_diffusion
    from mmagic_vico.utils.errors import UserError
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    with pytest.raises(OSError, match='model.pretrained_model=/path/to/sd15') as err:
        load_stable_diffusion('stable-diffusion-v1-5/stable-diffusion-v1-5')
    assert isinstance(err.value, UserError)  # the tools print it in one line, no traceback
    with pytest.raises(FileNotFoundError, match='not a folder'):
        load_stable_diffusion(str(tmp_path / 'nowhere'))
    (tmp_path / 'half').mkdir()
    (tmp_path / 'half' / 'unet').mkdir()
    with pytest.raises(FileNotFoundError, match='lacks'):
        load_stable_diffusion(str(tmp_path / 'half'))
