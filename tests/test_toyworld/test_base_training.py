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


def test_phase_switch_to_zero_terminal_snr_resumes_exactly_and_ships_its_schedule(run_dir, tmp_path):
    """Phase 2 (v-prediction on the zero-terminal-SNR schedule) starts from phase 1's EMA weights; a run
    stopped at the switch continues to the same weights, and the exported folder samples as trained."""
    import json

    from diffusers import StableDiffusionPipeline
    phases = ((0, bm.EPSILON_SCHEDULE), (2, bm.ZERO_SNR_SCHEDULE))
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    _copy_inputs(run_dir, a)
    _copy_inputs(run_dir, b)
    logs = []
    quiet = dict(batch_size=2, log=lambda m: None, max_threads=1, phases=phases)
    bm.train_unet(a, steps=4, **dict(quiet, log=logs.append))
    assert any('phase 2 from step 2: v_prediction' in m for m in logs)
    bm.train_unet(b, steps=2, **quiet)
    with open(os.path.join(b, 'pipeline', 'scheduler', 'scheduler_config.json')) as f:
        assert json.load(f)['_class_name'] == 'PNDMScheduler'  # still phase 1's epsilon model
    bm.train_unet(b, steps=4, **quiet)  # resumes at the switch
    wa, wb = _weights(os.path.join(a, 'pipeline')), _weights(os.path.join(b, 'pipeline'))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    state = torch.load(os.path.join(a, 'unet_state.pt'), weights_only=True)
    assert state['phase'] == 1 and state['rewarm_from'] == 2
    pipe = StableDiffusionPipeline.from_pretrained(os.path.join(a, 'pipeline'))
    config = pipe.scheduler.config
    assert (type(pipe.scheduler).__name__, config.prediction_type, config.rescale_betas_zero_snr,
            config.timestep_spacing) == ('DDIMScheduler', 'v_prediction', True, 'trailing')
    assert float(pipe.scheduler.alphas_cumprod[-1]) < 1e-6  # no picture left in the starting noise
    assert pipe.scheduler.set_timesteps(5) is None and int(pipe.scheduler.timesteps[0]) == 999


def test_loss_weights_keep_the_noisiest_steps():
    from diffusers import DDPMScheduler
    acp = DDPMScheduler.from_config(bm.ZERO_SNR_SCHEDULE).alphas_cumprod
    t = torch.tensor([999, 500, 0])
    w = bm.loss_weight(acp, t, 'v_prediction')
    assert w[0] == 1 and w[1] == 1 and 0 < w[2] < 0.01  # capped only where SNR + 1 > 6
    w_eps = bm.loss_weight(DDPMScheduler.from_config(bm.EPSILON_SCHEDULE).alphas_cumprod, t[1:], 'epsilon')
    assert w_eps[0] == 1 and w_eps[1] < 0.01
