"""The base model's training stages on a handful of scenes: they chain, they resume exactly, and the
result is a folder the stock StableDiffusionPipeline loads."""
import os
import shutil

import numpy as np
import pytest
import torch

from mmagic_vico.toyworld import base_model as bm


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp('toyrun'))
    bm.render_dataset(os.path.join(d, 'data.npz'), 48, seed=0, processes=1, log=lambda m: None)
    bm.train_vae(d, batch_size=4, phases=((1, 32, False), (1, None, True)), log=lambda m: None, max_threads=1)
    bm.encode_dataset(d, log=lambda m: None)
    return d


def _copy_inputs(src, dst):
    os.makedirs(dst)
    for name in ('data.npz', 'latents.npz'):
        shutil.copy(os.path.join(src, name), dst)
    shutil.copytree(os.path.join(src, 'vae'), os.path.join(dst, 'vae'))


def _weights(folder):
    from safetensors.torch import load_file
    return {f'{c}.{k}': v for c in ('unet', 'text_encoder')
            for f in os.listdir(os.path.join(folder, c)) if f.endswith('.safetensors')
            for k, v in load_file(os.path.join(folder, c, f)).items()}


def test_vae_scaling_factor_gives_unit_variance_latents(run_dir):
    from diffusers import AutoencoderKL
    vae = AutoencoderKL.from_pretrained(os.path.join(run_dir, 'vae'))
    lat = np.load(os.path.join(run_dir, 'latents.npz'))
    assert lat['mean'].shape == (48, 4, 16, 16)  # 64 px -> 16x16 latents: a 4x autoencoder
    z = lat['mean'].astype(np.float32) * vae.config.scaling_factor
    assert abs(float(z.std()) - 1) < 0.05


def test_unet_stage_resumes_to_the_same_weights(run_dir, tmp_path):
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    _copy_inputs(run_dir, a)
    _copy_inputs(run_dir, b)
    quiet = dict(batch_size=2, log=lambda m: None, max_threads=1)
    bm.train_unet(a, steps=4, **quiet)
    bm.train_unet(b, steps=2, **quiet)
    bm.train_unet(b, steps=4, **quiet)  # resumes from b's checkpoint at step 2
    wa, wb = _weights(os.path.join(a, 'pipeline')), _weights(os.path.join(b, 'pipeline'))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    initial = bm.build_components(0)[0].state_dict()
    assert any(not torch.equal(initial[k], wa['unet.' + k]) for k in initial)  # it did train


def test_pipeline_folder_loads_in_diffusers_and_keeps_sd15_structure(run_dir, tmp_path):
    from diffusers import StableDiffusionPipeline
    d = str(tmp_path / 'p')
    _copy_inputs(run_dir, d)
    bm.train_unet(d, steps=1, batch_size=2, log=lambda m: None, max_threads=1)
    pipe = StableDiffusionPipeline.from_pretrained(os.path.join(d, 'pipeline'))
    names = [n for n, m in pipe.unet.named_modules() if type(m).__name__ == 'BasicTransformerBlock']
    assert len(names) == 16  # SD 1.5's 16 text transformer layers, so ViCo's 4 image attentions sit in place
    assert {'up_blocks.1.attentions.1.transformer_blocks.0', 'up_blocks.3.attentions.1.transformer_blocks.0'} <= set(names)
    out = pipe('a photo of a red cup on the beach', num_inference_steps=2, output_type='np',
               generator=torch.Generator().manual_seed(0)).images
    assert out.shape == (1, 64, 64, 3)


def test_a_new_machine_continues_from_the_shipped_fp16_snapshot(run_dir, tmp_path):
    """The weights-only snapshot committed to the repo (the EMA pipeline in fp16, with its step) is enough
    to go on: the continued run starts from those weights at that step, without an optimizer state."""
    import json

    from mmagic_vico.toyworld.ship import export_fp16
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    _copy_inputs(run_dir, a)
    quiet = dict(batch_size=2, log=lambda m: None, max_threads=1)
    bm.train_unet(a, steps=3, **quiet)
    snapshot = export_fp16(os.path.join(a, 'pipeline'), str(tmp_path / 'snapshot'))
    assert json.load(open(os.path.join(snapshot, bm.TRAINING_STATE))) == {'step': 3}
    _copy_inputs(run_dir, b)
    unet, text_encoder = bm.build_components(1)
    assert bm.load_snapshot(snapshot, unet, text_encoder) == 3
    shipped = _weights(snapshot)
    assert all(torch.equal(shipped['unet.' + k].float(), v) for k, v in unet.state_dict().items())
    logs = []
    bm.train_unet(b, steps=5, init_from=snapshot, **dict(quiet, log=logs.append))
    assert any('continuing from the snapshot' in m and 'step 3' in m for m in logs)
    assert json.load(open(os.path.join(b, 'pipeline', bm.TRAINING_STATE))) == {'step': 5}
    state = torch.load(os.path.join(b, 'unet_state.pt'), weights_only=True)
    assert state['step'] == 5 and state['rewarm_from'] == 3
    with pytest.raises(FileNotFoundError, match='exported'):
        bm.load_snapshot(run_dir, unet, text_encoder)
