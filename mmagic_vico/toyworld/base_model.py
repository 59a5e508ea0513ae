"""The toy-world base model: Stable Diffusion 1.5's architecture at 64 px, trained here from scratch.

Sizes (measured on 2 CPU cores, docs/toyworld.md): a 4x AutoencoderKL (64 px -> 16x16x4 latents,
so ViCo's image attention maps are 4x4 .. 16x16), SD 1.5's UNet block structure with widths
32/64/128/128, and a 4-layer CLIP text model of width 64 with CLIP's tokenizer and vocabulary. The
stages (render -> vae -> encode -> unet) each write into one run folder and resume from it; the
result is a diffusers folder that ``StableDiffusionPipeline.from_pretrained`` and every config load.
"""
import json
import os
import shutil
import tempfile
import time
from functools import lru_cache
from multiprocessing import Pool
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..models.tiny_sd import SD15_SCHEDULER_CONFIG, SD15_TEXT_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG, \
    write_clip_tokenizer_files
from .render import render_scene
from .world import BACKGROUND_NAMES, CLASS_NAMES, COLOUR_NAMES, random_caption, training_scenes

RESOLUTION = 64
V_PREDICTION_FROM = 8052  # see UNET_PHASES
TRAINING_STATE = 'training_state.json'  # beside an exported pipeline: the step its weights are from
UNET_CONFIG = dict(SD15_UNET_CONFIG, sample_size=16, block_out_channels=(32, 64, 128, 128), cross_attention_dim=64,
                   attention_head_dim=4)
VAE_CONFIG = dict(SD15_VAE_CONFIG, layers_per_block=1, norm_num_groups=8, block_out_channels=(32, 32, 64),
                  down_block_types=('DownEncoderBlock2D',) * 3, up_block_types=('UpDecoderBlock2D',) * 3,
                  sample_size=RESOLUTION)
TEXT_CONFIG = dict(SD15_TEXT_CONFIG, hidden_size=64, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
                   projection_dim=64)


# ----------------------------------------------------------------------------- stage 1: render
def _render_chunk(args):
    scenes, objects, colours = args
    imgs = np.empty((len(scenes), RESOLUTION, RESOLUTION, 3), np.uint8)
    masks = np.empty((len(scenes), RESOLUTION, RESOLUTION), np.uint8)
    for i, s in enumerate(scenes):
        img, mask = render_scene(s, RESOLUTION, objects=objects, colours=colours)
        imgs[i], masks[i] = img, (mask * 255 + 0.5).astype(np.uint8)
    return imgs, masks


def render_many(scenes, processes: int = 2, log: Callable = None, objects: Optional[dict] = None,
                colours: Optional[dict] = None):
    """Render scenes in worker processes -> (uint8 images (N, 64, 64, 3), uint8 masks (N, 64, 64)).
    ``objects``/``colours``: drawings and colours beyond the world's (the toy DreamBench's concepts)."""
    chunks = [(scenes[i:i + 500], objects, colours) for i in range(0, len(scenes), 500)]
    imgs, masks = [], []
    with Pool(processes) as pool:
        for i, (im, m) in enumerate(pool.imap(_render_chunk, chunks)):
            imgs.append(im)
            masks.append(m)
            if log and i % 20 == 0:
                log(f'rendered {sum(len(x) for x in imgs)}/{len(scenes)}')
    return np.concatenate(imgs), np.concatenate(masks)


def scene_labels(scenes) -> np.ndarray:
    """(N, 3) int: background, class, colour indices."""
    return np.array([[BACKGROUND_NAMES.index(s.background), CLASS_NAMES.index(s.cls), COLOUR_NAMES.index(s.colour)]
                     for s in scenes], np.int16).reshape(-1, 3)


def render_dataset(path: str, n: int, seed: int = 0, processes: int = 2, log: Callable = print) -> None:
    """Render n training scenes into an .npz (images, masks, labels, seeds)."""
    scenes = list(training_scenes(n, seed))
    images, masks = render_many(scenes, processes, log)
    tmp = path + '.tmp.npz'
    np.savez(tmp, images=images, masks=masks, labels=scene_labels(scenes), seeds=np.array([s.seed for s in scenes]))
    os.replace(tmp, path)


def scenes_from_labels(labels: np.ndarray, seeds: np.ndarray):
    from .render import Scene
    return [Scene(BACKGROUND_NAMES[b], CLASS_NAMES[k], COLOUR_NAMES[c], int(s)) for (b, k, c), s in zip(labels, seeds)]


# ----------------------------------------------------------------------------- helpers
def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def _save_state(path: str, state: dict) -> None:
    tmp = path + '.tmp'
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_state(path: str) -> Optional[dict]:
    return torch.load(path, weights_only=True) if os.path.exists(path) else None


def adapt_threads(max_threads: int) -> int:
    """Use one thread while other work keeps the machine busy (a 2-thread step then waits on the preempted
    thread at every parallel region and runs slower than one thread), all of them when it is idle."""
    if max_threads <= 1:
        return 1
    others = os.getloadavg()[0] - torch.get_num_threads()
    threads = max_threads if others < 0.7 else 1
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads


# ----------------------------------------------------------------------------- stage 2: VAE
def vae_loss(vae, x: torch.Tensor, mask: torch.Tensor, generator: torch.Generator, object_weight: float = 4.0,
             kl_weight: float = 1e-6) -> torch.Tensor:
    """L1 + L2 reconstruction with object pixels weighted (1 + object_weight) + SD's small KL term."""
    posterior = vae.encode(x).latent_dist
    z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
    rec = vae.decode(z).sample
    w = 1 + object_weight * mask
    err = (rec - x).abs() + (rec - x) ** 2
    return (w * err).sum() / (w.sum() * 3) + kl_weight * posterior.kl().mean()


def hue_rotation(theta: torch.Tensor) -> torch.Tensor:
    """(N,) angles -> (N, 3, 3) RGB matrices rotating colours about the grey axis (greys stay grey)."""
    k = torch.full((3,), 3 ** -0.5)
    kx = torch.tensor([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    c, s = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    return torch.eye(3) * c + kx * s + torch.outer(k, k) * (1 - c)


def recolour(x: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Colours the world never shows, for an autoencoder that must carry any concept's colours: per image,
    nothing (40 %), the object's hue rotated (40 %) or the whole picture's (20 %), then the changed pixels
    mixed towards white or black (pinks, creams, navies). x in [-1, 1], mask (N, 1, H, W) in [0, 1]."""
    n = x.shape[0]
    kind = rng.choice(3, size=n, p=[0.4, 0.4, 0.2])
    rot = hue_rotation(torch.from_numpy(rng.uniform(0, 2 * np.pi, n)).float())
    rgb = (x + 1) / 2
    turned = torch.einsum('nij,njhw->nihw', rot, rgb)
    tone = torch.from_numpy(rng.uniform(-0.5, 0.5, n)).float()[:, None, None, None]
    turned = torch.where(tone > 0, turned + (1 - turned) * tone, turned * (1 + tone)).clamp(0, 1)
    where = torch.from_numpy(kind).view(n, 1, 1, 1)
    weight = torch.where(where == 1, mask, (where == 2).float().expand_as(mask))
    return (rgb + (turned - rgb) * weight) * 2 - 1


#: The autoencoder's schedule: (steps, crop size or None for whole images, colours recoloured).
#: Crops are 4x cheaper (the autoencoder is convolutional); the recoloured phases came second
#: (docs/toyworld.md: without them, teal, pink and lime came back blue, white and yellow).
VAE_PHASES = ((3500, 32, False), (500, None, False), (1200, 32, True), (300, None, True))


def train_vae(run_dir: str, batch_size: int = 32, lr: float = 5e-4, phases=VAE_PHASES, seed: int = 0,
              checkpoint_minutes: float = 10.0, log: Callable = print, max_threads: int = 2):
    """Train the autoencoder through ``phases``; resumable from run_dir/vae_state.pt."""
    from diffusers import AutoencoderKL
    data = np.load(os.path.join(run_dir, 'data.npz'))
    images, masks = data['images'], data['masks']
    torch.manual_seed(seed)
    vae = AutoencoderKL(**VAE_CONFIG)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    state_path = os.path.join(run_dir, 'vae_state.pt')
    state, start = _load_state(state_path), 0
    if state:
        vae.load_state_dict(state['model'])
        opt.load_state_dict(state['opt'])
        start = int(state['step'])
        log(f'vae: resumed at step {start}')
    schedule = [(crop, recoloured) for n, crop, recoloured in phases for _ in range(n)]
    steps = len(schedule)
    last_save, t0, running = time.time(), time.time(), None
    adapt_threads(max_threads)
    for step in range(start, steps):
        crop, recoloured = schedule[step]
        rng = np.random.default_rng([seed, 1, step])
        idx = rng.integers(len(images), size=batch_size)
        x, m = to_tensor(images[idx]), torch.from_numpy(masks[idx]).float().div(255)[:, None]
        if crop:
            oy, ox = rng.integers(0, RESOLUTION - crop + 1, size=2)
            x, m = x[..., oy:oy + crop, ox:ox + crop], m[..., oy:oy + crop, ox:ox + crop]
        if recoloured:
            x = recolour(x, m, rng)
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        loss = vae_loss(vae, x, m, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if (step + 1) % 100 == 0:
            log(f'vae step {step + 1}/{steps} loss {running:.4f} ({(time.time() - t0) / (step + 1 - start):.2f} s/step, '
                f'{torch.get_num_threads()} threads)')
            adapt_threads(max_threads)
        if time.time() - last_save > checkpoint_minutes * 60 or step + 1 == steps:
            _save_state(state_path, dict(model=vae.state_dict(), opt=opt.state_dict(), step=step + 1))
            last_save = time.time()
    vae.eval()
    # SD's convention: latents * scaling_factor have unit variance
    with torch.no_grad():
        z = torch.cat([vae.encode(to_tensor(images[i:i + 256])).latent_dist.mean for i in range(0, min(2048, len(images)), 256)])
    vae.register_to_config(scaling_factor=float(1 / z.std()))
    vae.save_pretrained(os.path.join(run_dir, 'vae'))
    log(f'vae: saved, scaling_factor {vae.config.scaling_factor:.4f}')
    return vae


# ----------------------------------------------------------------------------- stage 3: encode
def encode_dataset(run_dir: str, log: Callable = print) -> None:
    """Posterior mean and std of every training image (sampled afresh at every UNet step)."""
    from diffusers import AutoencoderKL
    vae = AutoencoderKL.from_pretrained(os.path.join(run_dir, 'vae')).eval()
    images = np.load(os.path.join(run_dir, 'data.npz'))['images']
    means, stds = [], []
    with torch.no_grad():
        for i in range(0, len(images), 512):
            post = vae.encode(to_tensor(images[i:i + 512])).latent_dist
            means.append(post.mean.half().numpy())
            stds.append(post.std.half().numpy())
            if i % 10240 == 0:
                log(f'encoded {i + len(means[-1])}/{len(images)}')
    tmp = os.path.join(run_dir, 'latents.tmp.npz')
    np.savez(tmp, mean=np.concatenate(means), std=np.concatenate(stds))
    os.replace(tmp, os.path.join(run_dir, 'latents.npz'))


# ----------------------------------------------------------------------------- stage 4: UNet + text encoder
#: The UNet's noise schedules by training step: (first step, scheduler config). Phase 1 learned epsilon on
#: SD 1.5's own schedule, and its samples took their colours from the starting noise: SD's last timestep
#: leaves sqrt(0.0047) of the image in, and at 16x16 latents the noise's channel means are 4x larger than at
#: SD's 64x64, so the model learned to read a picture's mean colour off them (docs/toyworld.md: with the
#: starting noise's channel means removed, class and colour went from 0.75 to 0.98 and 0.92). Phase 2
#: continues from phase 1's EMA weights on the same schedule rescaled to zero terminal SNR, with
#: v-prediction and trailing timesteps (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps
#: are Flawed"), so no picture is left in the noise the sampler starts from.
EPSILON_SCHEDULE = dict(SD15_SCHEDULER_CONFIG, prediction_type='epsilon')
ZERO_SNR_SCHEDULE = dict(SD15_SCHEDULER_CONFIG, prediction_type='v_prediction', rescale_betas_zero_snr=True,
                         timestep_spacing='trailing')
UNET_PHASES = ((0, EPSILON_SCHEDULE), (V_PREDICTION_FROM, ZERO_SNR_SCHEDULE))


def phase_at(step: int, phases=UNET_PHASES) -> int:
    """The index of the phase training step ``step`` belongs to."""
    return max(i for i, (first, _) in enumerate(phases) if first <= step)


def loss_weight(alphas_cumprod: torch.Tensor, t: torch.Tensor, prediction_type: str, gamma: float = 5.0):
    """Min-SNR-gamma weighting (Hang et al. 2023). Epsilon: min(SNR, gamma) / SNR. v: min(SNR + 1, gamma + 1)
    / (SNR + 1), i.e. the plain v loss (x0 error weighted SNR + 1) capped at gamma + 1 on the easy steps; it
    stays 1 at zero SNR, where the picture's layout and colours are decided."""
    snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
    if prediction_type == 'v_prediction':
        return torch.clamp(snr + 1, max=gamma + 1) / (snr + 1)
    return torch.clamp(snr, max=gamma) / snr


class EMA:
    """Exponential moving average of parameters with the usual warm-up (1 + n) / (10 + n)."""

    def __init__(self, params, decay: float):
        self.params = list(params)
        self.shadow = [p.detach().clone() for p in self.params]
        self.decay = decay

    @torch.no_grad()
    def update(self, step: int):
        d = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1 - d)

    def state_dict(self):
        return {str(i): s for i, s in enumerate(self.shadow)}

    def load_state_dict(self, sd):
        for i, s in enumerate(self.shadow):
            s.copy_(sd[str(i)])

    @torch.no_grad()
    def copy_to(self, params):
        for p, s in zip(params, self.shadow):
            p.copy_(s)


def build_components(seed: int = 0):
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(seed)
    return UNet2DConditionModel(**UNET_CONFIG), CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))


def load_tokenizer(run_dir: str):
    from transformers import CLIPTokenizer
    folder = os.path.join(run_dir, 'tokenizer')
    if not os.path.isdir(folder):
        write_clip_tokenizer_files(folder)
    return CLIPTokenizer.from_pretrained(folder)


def save_pipeline(folder: str, unet, text_encoder, vae, tokenizer, dtype=torch.float32, step: Optional[int] = None,
                  schedule: dict = EPSILON_SCHEDULE) -> str:
    """A diffusers folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/), written
    beside the target and renamed over it; ``step``: the training step, in training_state.json. The
    scheduler is SD 1.5's PNDM for an epsilon model, DDIM for a zero-terminal-SNR one (PNDM cannot
    rescale its betas), so that the stock pipeline samples each as it was trained."""
    from diffusers import DDIMScheduler, PNDMScheduler, StableDiffusionPipeline
    scheduler_class = DDIMScheduler if schedule.get('rescale_betas_zero_snr') else PNDMScheduler
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.pipeline-', dir=parent)
    try:
        pipe = StableDiffusionPipeline(
            vae=_copy_as(vae, dtype), text_encoder=_copy_as(text_encoder, dtype), unet=_copy_as(unet, dtype),
            tokenizer=tokenizer,
            scheduler=scheduler_class.from_config(schedule), safety_checker=None, feature_extractor=None,
            requires_safety_checker=False)
        pipe.save_pretrained(staging, safe_serialization=True)
        if step is not None:
            with open(os.path.join(staging, TRAINING_STATE), 'w', encoding='utf-8') as f:
                json.dump({'step': int(step)}, f)
        old = folder + '.old'
        if os.path.exists(folder):
            shutil.rmtree(old, ignore_errors=True)
            os.rename(folder, old)
        os.rename(staging, folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def load_snapshot(folder: str, unet, text_encoder) -> int:
    """Load an exported pipeline's UNet and text encoder weights (fp16 or fp32) into the training modules;
    returns the step its training_state.json names."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel
    path = os.path.join(folder, TRAINING_STATE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{folder} has no {TRAINING_STATE}: give a pipeline folder that '
                                'tools/train_toy_base.py exported (run_dir/pipeline, or its --export copy)')
    with open(path, encoding='utf-8') as f:
        step = int(json.load(f)['step'])
    unet.load_state_dict({k: v.float() for k, v in
                          UNet2DConditionModel.from_pretrained(os.path.join(folder, 'unet')).state_dict().items()})
    text_encoder.load_state_dict({k: v.float() for k, v in CLIPTextModel.from_pretrained(
        os.path.join(folder, 'text_encoder')).state_dict().items()})
    return step


def _copy_as(module, dtype):
    import copy
    module = copy.deepcopy(module)
    return module if dtype == torch.float32 else module.to(dtype)


def train_unet(run_dir: str, steps: int = 40000, batch_size: int = 32, lr: float = 5e-4, warmup: int = 500,
               ema_decay: float = 0.9995, seed: int = 0, checkpoint_minutes: float = 10.0,
               on_checkpoint: Optional[Callable] = None, log: Callable = print, max_minutes: float = None,
               max_threads: int = 2, init_from: Optional[str] = None, phases=UNET_PHASES):
    """Train the UNet and the text encoder jointly (min-SNR-5 weighting, EMA) through ``phases`` (noise
    schedules by step, UNET_PHASES). At the first step of a phase the EMA weights become the live ones and
    the optimizer and the EMA start afresh, with the warm-up again.

    Every step draws its batch, captions, timesteps and noise from generators seeded by (seed, step),
    so a resumed run continues exactly as an uninterrupted one. Checkpoints (weights-only loadable)
    go to run_dir/unet_state.pt every ``checkpoint_minutes``; the EMA weights are exported as a
    diffusers folder run_dir/pipeline at each one (with training_state.json: its step) and
    ``on_checkpoint(step)`` is called.

    ``init_from``: a pipeline folder exported by this function (or its fp16 copy, e.g. the weights-only
    snapshot committed to the repo) to continue from when run_dir has no checkpoint: its EMA weights
    become the live and EMA weights at its step; the optimizer starts afresh with the warm-up again.
    Such a continuation is close to, not bit-equal with, an uninterrupted run.
    """
    from diffusers import AutoencoderKL, DDPMScheduler
    unet, text_encoder = build_components(seed)
    tokenizer = load_tokenizer(run_dir)
    vae = AutoencoderKL.from_pretrained(os.path.join(run_dir, 'vae'))
    sf = vae.config.scaling_factor
    data = np.load(os.path.join(run_dir, 'data.npz'))
    labels, seeds = data['labels'], data['seeds']
    scenes = scenes_from_labels(labels, seeds)
    lat = np.load(os.path.join(run_dir, 'latents.npz'))
    lat_mean, lat_std = torch.from_numpy(lat['mean'].astype(np.float32)), torch.from_numpy(lat['std'].astype(np.float32))
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    ema = EMA(params, ema_decay)
    state_path = os.path.join(run_dir, 'unet_state.pt')
    state, start = _load_state(state_path), 0
    if state:
        unet.load_state_dict(state['unet'])
        text_encoder.load_state_dict(state['text_encoder'])
        opt.load_state_dict(state['opt'])
        ema.load_state_dict(state['ema'])
        start = int(state['step'])
        log(f'unet: resumed at step {start}')
    rewarm_from = int(state.get('rewarm_from', 0)) if state else 0
    phase = int(state.get('phase', 0)) if state else 0
    if not state and init_from:
        start = rewarm_from = load_snapshot(init_from, unet, text_encoder)
        ema = EMA(params, ema_decay)
        phase = phase_at(start, phases)
        log(f'unet: continuing from the snapshot {init_from} at step {start} (fresh optimizer, warm-up again)')
    noise_scheduler = DDPMScheduler.from_config(phases[phase][1])

    @lru_cache(maxsize=100_000)
    def ids(text: str) -> torch.Tensor:
        return tokenizer(text, padding='max_length', max_length=tokenizer.model_max_length, truncation=True,
                         return_tensors='pt').input_ids[0]

    def checkpoint(step):
        _save_state(state_path, dict(unet=unet.state_dict(), text_encoder=text_encoder.state_dict(),
                                     opt=opt.state_dict(), ema=ema.state_dict(), step=step, rewarm_from=rewarm_from,
                                     phase=phase))
        export_ema(run_dir, unet, text_encoder, vae, tokenizer, ema, params, step, phases[phase][1])
        log(f'unet: checkpoint at step {step}')
        if on_checkpoint:
            on_checkpoint(step)

    unet.train()
    text_encoder.train()
    t_start, last_save, running = time.time(), time.time(), None
    adapt_threads(max_threads)
    for step in range(start, steps):
        if phase_at(step, phases) != phase:
            phase, rewarm_from = phase_at(step, phases), step
            ema.copy_to(params)
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
            ema = EMA(params, ema_decay)
            noise_scheduler = DDPMScheduler.from_config(phases[phase][1])
            log(f'unet: phase {phase + 1} from step {step}: {noise_scheduler.config.prediction_type}, zero terminal '
                f'SNR {bool(noise_scheduler.config.rescale_betas_zero_snr)} (from the EMA weights, fresh optimizer)')
        prediction_type = noise_scheduler.config.prediction_type
        rng = np.random.default_rng([seed, 2, step])
        g = torch.Generator().manual_seed(seed * 1_000_003 + 7 * step + 1)
        idx = rng.integers(len(scenes), size=batch_size)
        captions = [random_caption(rng, scenes[i]) for i in idx]
        input_ids = torch.stack([ids(c) for c in captions])
        mean, std = lat_mean[idx], lat_std[idx]
        z = (mean + std * torch.randn(mean.shape, generator=g)) * sf
        noise = torch.randn(z.shape, generator=g)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (batch_size,), generator=g)
        noisy = noise_scheduler.add_noise(z, noise, t)
        for group in opt.param_groups:
            group['lr'] = lr * min(1.0, (step + 1 - rewarm_from) / warmup)
        context = text_encoder(input_ids)[0]
        pred = unet(noisy, t, context).sample
        target = noise_scheduler.get_velocity(z, noise, t) if prediction_type == 'v_prediction' else noise
        weight = loss_weight(noise_scheduler.alphas_cumprod, t, prediction_type)
        loss = (weight * F.mse_loss(pred, target, reduction='none').mean(dim=(1, 2, 3))).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update(step)
        running = loss.item() if running is None else 0.99 * running + 0.01 * loss.item()
        if (step + 1) % 100 == 0:
            rate = (step + 1 - start) * batch_size / (time.time() - t_start)
            log(f'unet step {step + 1}/{steps} loss {running:.4f} ({rate:.1f} samples/s, '
                f'{torch.get_num_threads()} threads)')
            adapt_threads(max_threads)
        done = step + 1 == steps
        out_of_time = max_minutes is not None and time.time() - t_start > max_minutes * 60
        if time.time() - last_save > checkpoint_minutes * 60 or done or out_of_time:
            checkpoint(step + 1)
            last_save = time.time()
        if out_of_time:
            log(f'unet: stopping after {max_minutes} minutes at step {step + 1}')
            break


def export_ema(run_dir, unet, text_encoder, vae, tokenizer, ema, params, step: int, schedule: dict = EPSILON_SCHEDULE):
    """Write the EMA weights as the diffusers folder run_dir/pipeline (the live weights are left as they are),
    with training_state.json naming the step."""
    live = [p.detach().clone() for p in params]
    ema.copy_to(params)
    try:
        save_pipeline(os.path.join(run_dir, 'pipeline'), unet, text_encoder, vae, tokenizer, step=step,
                      schedule=schedule)
    finally:
        with torch.no_grad():
            for p, v in zip(params, live):
                p.copy_(v)


def count_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())
