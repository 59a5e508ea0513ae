"""ViCo: detail-preserving visual condition for personalized text-to-image generation.

Hao, Han, Zhao, Wong, arXiv 2306.00971. A frozen Stable Diffusion 1.x with one learned placeholder
token and image cross-attention blocks in the UNet decoder that attend to a clean reference image
run through the same UNet (see ``docs``/the spec for the exact semantics).
"""
import contextlib
import functools
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils.torch_utils import randn_tensor
from mmengine.model import BaseModel
from PIL import Image
from tqdm.auto import tqdm

from mmagic_vico.registry import MODELS
from mmagic_vico.utils.image import to_rgb
from ..data_preprocessor import ViCoDataPreprocessor
from ..sd_loading import load_stable_diffusion
from ..token_embedding import add_placeholder
from .attention_store import ViCoAttentionStore
from .image_cross_attention import DEFAULT_IMAGE_CROSS_LAYERS, inject_image_cross_attention, set_attention_path
from .weights import atomic_save_safetensors, load_vico_weights, save_vico_weights

#: Substrings of the names of all trainable parameters (optimizer groups, saving, loading, tests).
TRAINABLE_MARKERS = ('image_cross_attention', 'trainable_embeddings')
HALF_DTYPES = {'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16, 'fp16': torch.float16, 'float16': torch.float16}


@dataclass
class ReferenceStream:
    """The reference rows of a ViCo UNet call (R rows) and how the G generated rows map onto them."""
    latents: torch.Tensor  # (R, 4, h, w), clean
    context: torch.Tensor  # (R, L, D) text context of each reference row
    placeholder_index: torch.Tensor  # (R,) token column read for the mask / regulariser
    eot_index: torch.Tensor  # (R,)
    ref_index: torch.Tensor  # (G,) reference row of each generated row
    timesteps: torch.Tensor | None = None  # (R,) when the generated rows have per-row timesteps


def _cache_key(sample, kind: str, size) -> tuple | None:
    """Which training image (and augmentation) a row is, from its data sample's metainfo."""
    meta = sample if isinstance(sample, dict) else getattr(sample, 'metainfo', {})
    path = meta.get('img_path' if kind == 'img' else 'ref_path')
    if path is None:
        return None
    return path, bool(meta.get('img_flip' if kind == 'img' else 'ref_flip', False)), tuple(size)


def _under_autocast(method):
    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        with self.autocast():
            return method(self, *args, **kwargs)
    return wrapped


def is_trainable_name(name: str) -> bool:
    return any(m in name for m in TRAINABLE_MARKERS)


def _keep_trainable(module, state_dict, prefix, local_metadata):
    for key in [k for k in state_dict if k.startswith(prefix) and not is_trainable_name(k[len(prefix):])]:
        del state_dict[key]


def _ignore_missing_frozen(module, incompatible_keys):
    missing = incompatible_keys.missing_keys
    missing[:] = [k for k in missing if is_trainable_name(k)]


@MODELS.register_module()
class ViCo(BaseModel):
    """ViCo on a frozen Stable Diffusion 1.x.

    Args:
        pretrained_model: hub id or local folder in the diffusers layout; every component loads from it.
        placeholder: the new token standing for the concept in prompts, e.g. ``'S*'``.
        initialize_token: one CLIP token whose embedding initialises the placeholder's.
        image_cross_layers: 16 flags over the UNet's text transformer layers in down -> mid -> up order.
        reg_loss_weight: lambda of the attention regulariser (paper Eq. 7).
        fast_path: exact speed-ups on (shared reference stream, stopped after the last image attention
            layer, cached training latents, fused attention); False runs the straightforward path.
        gradient_checkpointing: recompute the frozen UNet's blocks in the backward pass (less memory).
        frozen_dtype: ``'bf16'`` / ``'fp16'`` holds the frozen VAE, text encoder and UNet in half
            precision (trainable weights and optimizer state stay fp32); the model then runs under
            autocast. ``None``: everything fp32.
    """

    def __init__(self, pretrained_model: str, placeholder: str = 'S*', initialize_token: str | None = None,
                 image_cross_layers=DEFAULT_IMAGE_CROSS_LAYERS, reg_loss_weight: float = 5e-4,
                 fast_path: bool = True, gradient_checkpointing: bool = False, frozen_dtype: str | None = None,
                 data_preprocessor=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor or dict(type=ViCoDataPreprocessor),
                         init_cfg=init_cfg)
        if reg_loss_weight < 0:
            raise ValueError(f'reg_loss_weight={reg_loss_weight} must be >= 0 (the paper uses 5e-4).')
        self.pretrained_model = pretrained_model
        self.placeholder, self.initialize_token = placeholder, initialize_token
        self.image_cross_layers = [int(bool(f)) for f in image_cross_layers]
        self.reg_loss_weight = reg_loss_weight

        parts = load_stable_diffusion(pretrained_model)
        self.tokenizer = parts['tokenizer']
        self.text_encoder, self.vae, self.unet = parts['text_encoder'], parts['vae'], parts['unet']
        self.scheduler_config = parts['scheduler_config']
        self.placeholder_id = add_placeholder(self.tokenizer, self.text_encoder, placeholder, initialize_token)
        self.store = ViCoAttentionStore()
        self.image_cross_layer_names = inject_image_cross_attention(self.unet, self.image_cross_layers, self.store)
        self.latent_cache = {}  # (path, flip, H, W) -> (posterior mean, std) of a training image
        self.use_fast_path(fast_path)
        self.gradient_checkpointing = bool(gradient_checkpointing)
        if self.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        self.frozen_dtype = HALF_DTYPES.get(frozen_dtype, 'invalid') if frozen_dtype else None
        if self.frozen_dtype == 'invalid':
            raise ValueError(f'frozen_dtype={frozen_dtype!r}: use None (fp32), "bf16" or "fp16".')
        if self.frozen_dtype is not None:
            self._hold_frozen_in(self.frozen_dtype)
        for name, param in self.named_parameters():
            param.requires_grad_(is_trainable_name(name))
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor)
        self.noise_scheduler = DDPMScheduler.from_config(self.scheduler_config)
        # checkpoints hold only what trains (spec Sec. 5): the frozen base comes from pretrained_model
        self.register_state_dict_post_hook(_keep_trainable)
        self.register_load_state_dict_post_hook(_ignore_missing_frozen)

    @property
    def device(self) -> torch.device:
        return self.unet.device

    def init_weights(self):
        """Nothing to initialise: the base is pretrained, the new blocks keep PyTorch's defaults."""

    def _hold_frozen_in(self, dtype: torch.dtype) -> None:
        for module in (self.vae, self.text_encoder, self.unet):
            for name, param in module.named_parameters():
                if not param.requires_grad:
                    param.data = param.data.to(dtype)

    def autocast(self):
        """Mixed precision around the model's own computations when the frozen base is held in half."""
        if self.frozen_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.frozen_dtype)

    def use_fast_path(self, fast: bool = True) -> None:
        """Switch between the fast path and the straightforward one (same results within float tolerance)."""
        self.fast_path = bool(fast)
        set_attention_path(self.unet, self.store, self.fast_path)

    # ---------------------------------------------------------------- text and images
    def tokenize(self, prompts: list) -> torch.Tensor:
        return self.tokenizer(prompts, padding='max_length', max_length=self.tokenizer.model_max_length,
                              truncation=True, return_tensors='pt').input_ids.to(self.device)

    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids, attention_mask=None)[0]

    def token_positions(self, input_ids: torch.Tensor):
        """Per row: the placeholder's column (end-of-text's where it is absent) and end-of-text's."""
        is_eot = input_ids == self.tokenizer.eos_token_id
        is_ph = input_ids == self.placeholder_id
        eot = is_eot.int().argmax(dim=1)
        ph = torch.where(is_ph.any(dim=1), is_ph.int().argmax(dim=1), eot)
        return ph, eot

    def encode_images(self, images: torch.Tensor, generator=None) -> torch.Tensor:
        """Scaled VAE latents (a posterior sample, as the original) of ``[-1, 1]`` images."""
        posterior = self.vae.encode(images.to(self.device, self.vae.dtype)).latent_dist
        return posterior.sample(generator) * self.vae.config.scaling_factor

    def encode_training_images(self, images: torch.Tensor, data_samples, kind: str) -> torch.Tensor:
        """Posterior samples of training images; on the fast path each image (and each flip of it) is
        VAE-encoded once and its posterior mean and std kept, then sampled every step as the original."""
        keys = [_cache_key(s, kind, images.shape[-2:]) for s in data_samples]
        if not self.fast_path or None in keys:
            return self.encode_images(images)
        for i, key in enumerate(keys):
            if key not in self.latent_cache:  # one image per encode: the same numbers whatever the batch
                posterior = self.vae.encode(images[i:i + 1].to(self.device, self.vae.dtype)).latent_dist
                self.latent_cache[key] = (posterior.mean[0], posterior.std[0])
        mean = torch.stack([self.latent_cache[k][0] for k in keys])
        std = torch.stack([self.latent_cache[k][1] for k in keys])
        return (mean + std * randn_tensor(mean.shape, device=mean.device, dtype=mean.dtype)) * \
            self.vae.config.scaling_factor

    # ---------------------------------------------------------------- the two-stream UNet call
    def predict_noise(self, latents, timesteps, context, reference: ReferenceStream | None = None,
                      scale: float = 1.0, regularize: bool = False) -> torch.Tensor:
        """Noise prediction of the generated rows; with a reference, both ViCo streams in one batch."""
        if reference is None:
            return self.unet(latents, timesteps, encoder_hidden_states=context, return_dict=False)[0]
        g = latents.shape[0]
        sample = torch.cat([latents, reference.latents.to(latents.dtype)])
        context = torch.cat([context, reference.context.to(context.dtype)])
        if timesteps.ndim:
            timesteps = torch.cat([timesteps, reference.timesteps])
        recompute = self.gradient_checkpointing and torch.is_grad_enabled()
        with self.store.open(g, reference.ref_index, reference.placeholder_index, reference.eot_index,
                             scale=scale, regularize=regularize, truncate=self.fast_path, keep_open=recompute):
            out = self.unet(sample, timesteps, encoder_hidden_states=context, return_dict=False)[0]
        return out[:g]

    # ---------------------------------------------------------------- training
    def forward(self, inputs, data_samples=None, mode: str = 'loss'):
        if mode == 'loss':
            with self.autocast():
                return self.loss(inputs, data_samples)
        raise ValueError(f'ViCo.forward supports mode="loss" only (got {mode!r}); sample with ViCo.infer().')

    def loss(self, inputs: dict, data_samples) -> dict:
        """Diffusion loss on the target images and the attention regulariser (paper Eq. 7).

        ``inputs``: ``img`` and ``img_ref``, ``(B, 3, H, W)`` in ``[-1, 1]``; ``data_samples``: one dict
        (or object) with a ``prompt`` per image.
        """
        prompts = [s['prompt'] if isinstance(s, dict) else s.prompt for s in data_samples]
        with torch.no_grad():
            latents = self.encode_training_images(inputs['img'], data_samples, 'img')
            ref_latents = self.encode_training_images(inputs['img_ref'], data_samples, 'ref')
        b = latents.shape[0]
        noise = torch.randn(latents.shape, dtype=latents.dtype, device=latents.device)  # not _like: layout-free
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (b,), device=self.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        input_ids = self.tokenize(prompts)
        context = self.encode_text(input_ids)
        ph, eot = self.token_positions(input_ids)
        reference = ReferenceStream(ref_latents, context, ph, eot, torch.arange(b, device=self.device), timesteps)
        pred = self.predict_noise(noisy, timesteps, context, reference, regularize=True)
        if self.noise_scheduler.config.prediction_type == 'v_prediction':
            target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        else:
            target = noise
        loss_reg = self.reg_loss_weight * torch.stack(self.store.reg_terms).sum()
        return dict(loss_diffusion=F.mse_loss(pred.float(), target.float()), loss_reg=loss_reg)

    # ---------------------------------------------------------------- sampling
    @torch.no_grad()
    @_under_autocast
    def infer(self, prompt, image_reference=None, height: int | None = None, width: int | None = None,
              num_inference_steps: int = 50, guidance_scale: float = 7.5, negative_prompt=None,
              num_images_per_prompt: int = 1, eta: float = 0.0, generator=None, seed: int | None = None,
              latents: torch.Tensor | None = None, image_cross_attention_scale: float = 1.0,
              show_progress: bool = True) -> dict:
        """Sample images of the concept (DDIM, classifier-free guidance; paper Sec. 3, spec Sec. 6).

        Returns ``{'samples': [PIL.Image, ...]}`` in prompt-major order. With
        ``image_cross_attention_scale=0`` the result equals diffusers' ``StableDiffusionPipeline``.
        """
        # 0. arguments
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        height, width = self._check_infer_args(prompts, height, width, num_inference_steps, num_images_per_prompt)
        negatives = self._negative_prompts(negative_prompt, len(prompts))
        use_reference = image_cross_attention_scale != 0
        if use_reference and image_reference is None:
            raise ValueError('image_reference is required: give a PIL image or path of the concept '
                             '(or image_cross_attention_scale=0 to sample without it).')
        if generator is None and seed is not None:
            generator = torch.Generator('cpu').manual_seed(seed)
        n, p = num_images_per_prompt, len(prompts)
        do_cfg = guidance_scale > 1.0
        if not any(self.placeholder_id in ids for ids in self.tokenizer(prompts).input_ids):
            warnings.warn(f'No prompt contains the placeholder {self.placeholder!r}: the learned concept is '
                          f'used only through the reference image. Write it into the prompt, e.g. "a photo of {self.placeholder}".')

        # 1. text contexts (the pipeline's order: unconditional half first)
        input_ids = self.tokenize(prompts)
        cond = self.encode_text(input_ids)
        halves = [self.encode_text(self.tokenize(negatives)), cond] if do_cfg else [cond]
        context = torch.cat([h.repeat_interleave(n, dim=0) for h in halves])

        # 2. the reference stream: shared by the N images of a prompt (it never reads them)
        scheduler = DDIMScheduler.from_config(self.scheduler_config)
        scheduler.set_timesteps(num_inference_steps, device=self.device)
        shape = (p * n, self.unet.config.in_channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        dtype = torch.float32 if self.frozen_dtype else cond.dtype  # the sampler's state stays fp32
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=self.device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f'latents has shape {tuple(latents.shape)}; expected {shape} for {p} prompt(s) x '
                             f'{n} image(s) at {height}x{width}.')
        latents = latents.to(self.device, dtype) * scheduler.init_noise_sigma
        reference = None
        if use_reference:
            reference = self._reference_stream(image_reference, height, width, halves, input_ids, n, generator)

        # 3. denoising loop
        for t in tqdm(scheduler.timesteps, desc='ViCo sampling', disable=not show_progress):
            model_input = scheduler.scale_model_input(torch.cat([latents] * len(halves)), t)
            noise = self.predict_noise(model_input, t, context, reference, scale=image_cross_attention_scale)
            if do_cfg:
                uncond, text = noise.chunk(2)
                noise = uncond + guidance_scale * (text - uncond)
            latents = scheduler.step(noise, t, latents, eta=eta, generator=generator, return_dict=False)[0]

        # 4. decode
        images = self.vae.decode(latents / self.vae.config.scaling_factor, return_dict=False, generator=generator)[0]
        samples = self.image_processor.postprocess(images, output_type='pil', do_denormalize=[True] * len(images))
        return dict(samples=samples)

    def _reference_stream(self, image, height, width, halves, input_ids, n, generator) -> ReferenceStream:
        """One clean reference latent; one reference row per (guidance half, prompt)."""
        image = to_rgb(image).resize((width, height), Image.BICUBIC)
        pixels = self.image_processor.preprocess(image, height=height, width=width)
        ref_latent = self.encode_images(pixels, generator)
        ph, eot = self.token_positions(input_ids)
        p = input_ids.shape[0]
        rows = len(halves) * p
        # the unconditional half reads its mask at the conditional prompt's columns, as the original
        ph, eot, context = ph.repeat(len(halves)), eot.repeat(len(halves)), torch.cat(halves)
        share = self.fast_path  # one reference row per (half, prompt), shared by its n images
        if not share:  # the straightforward path: one reference row per generated row
            ph, eot = ph.repeat_interleave(n), eot.repeat_interleave(n)
            context, rows = context.repeat_interleave(n, dim=0), rows * n
        ref_index = torch.arange(rows, device=self.device)
        if share:
            ref_index = ref_index.repeat_interleave(n)
        return ReferenceStream(ref_latent.expand(rows, -1, -1, -1), context, ph, eot, ref_index)

    def _check_infer_args(self, prompts, height, width, steps, num_images):
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError(f'prompt={prompts!r}: give a string or a non-empty list of strings.')
        default = self.unet.config.sample_size * self.vae_scale_factor
        height, width = height or default, width or default
        for name, value in (('height', height), ('width', width)):
            if not isinstance(value, int) or value <= 0 or value % 8:
                raise ValueError(f'{name}={value!r} must be a positive multiple of 8 (e.g. {default}).')
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f'num_inference_steps={steps!r} must be a positive integer (50 is the default).')
        if not isinstance(num_images, int) or num_images < 1:
            raise ValueError(f'num_images_per_prompt={num_images!r} must be a positive integer.')
        return height, width

    @staticmethod
    def _negative_prompts(negative_prompt, num_prompts: int) -> list:
        if negative_prompt is None:
            return [''] * num_prompts
        if isinstance(negative_prompt, str):
            return [negative_prompt] * num_prompts
        negatives = list(negative_prompt)
        if len(negatives) != num_prompts:
            raise ValueError(f'negative_prompt has {len(negatives)} entries for {num_prompts} prompts; '
                             'give one string, or one per prompt.')
        return negatives

    # ---------------------------------------------------------------- trained weights
    def trainable_state_dict(self) -> dict:
        """The trainable parameters only: image cross-attention and the placeholder embedding."""
        return {k: v for k, v in self.state_dict().items() if is_trainable_name(k)}

    def save_learned_embeds(self, path: str) -> str:
        """The placeholder's embedding as ``{placeholder: (768,)}`` safetensors, the format that
        diffusers' ``load_textual_inversion`` reads (Textual Inversion's export)."""
        vector = self.text_encoder.get_input_embeddings().trainable_embeddings[0]
        return atomic_save_safetensors(path, {self.placeholder: vector}, {'format': 'pt'})

    def weights_metadata(self) -> dict:
        return dict(placeholder=self.placeholder, initialize_token=self.initialize_token,
                    image_cross_layers=self.image_cross_layers, pretrained_model=self.pretrained_model)

    def save_vico_weights(self, path: str) -> str:
        """Write the trainable parameters and their metadata to a safetensors file."""
        return save_vico_weights(path, self.trainable_state_dict(), self.weights_metadata())

    def load_vico_weights(self, path: str) -> None:
        """Load a file of :meth:`save_vico_weights`, checking keys, shapes, placeholder and layers."""
        state = load_vico_weights(path, self.trainable_state_dict(), self.weights_metadata())
        self.load_state_dict(state, strict=False)
