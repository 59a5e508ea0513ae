"""What every personalisation method on a frozen Stable Diffusion shares: loading, the placeholder
token, text and image encoding (with cached training latents), the diffusion loss inputs, the
sampling loop, precision switches, and checkpoints/weights that hold only what trains.

A method subclasses :class:`PersonalizedStableDiffusion`, names its trainable parameters by
``trainable_markers``, adds its modules in :meth:`build_method`, and implements ``loss`` and, when it
conditions the UNet on more than text, :meth:`sampling_condition` and :meth:`predict_noise`.
"""
import contextlib
import functools
import os
import warnings

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils.torch_utils import randn_tensor
from mmengine.model import BaseModel
from tqdm.auto import tqdm

from mmagic_vico.convert.embedding import convert_embedding_to_a1111
from mmagic_vico.utils import checks
from mmagic_vico.utils.errors import InvalidValueError
from .aesthetic_gradients import aesthetic_text_context, check_aesthetic_embedding
from .data_preprocessor import ViCoDataPreprocessor
from .sd_loading import load_stable_diffusion
from .token_embedding import add_placeholder, placeholder_tokens
from .weights import atomic_save_safetensors, check_weights, read_weights_file, save_weights_file

HALF_DTYPES = {'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16, 'fp16': torch.float16, 'float16': torch.float16}


def under_autocast(method):
    """Run a method inside the model's :meth:`PersonalizedStableDiffusion.autocast`."""
    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        with self.autocast():
            return method(self, *args, **kwargs)
    return wrapped


def _cache_key(sample, kind: str, size) -> tuple | None:
    """Which training image (and augmentation) a row is, from its data sample's metainfo."""
    meta = sample if isinstance(sample, dict) else getattr(sample, 'metainfo', {})
    path = meta.get(f'{kind}_path')  # kind: 'img', 'ref' or 'class'
    if path is None:
        return None
    return path, bool(meta.get(f'{kind}_flip', False)), tuple(size)


def prompts_of(data_samples) -> list:
    return [s['prompt'] if isinstance(s, dict) else s.prompt for s in data_samples]


class PersonalizedStableDiffusion(BaseModel):
    """A frozen Stable Diffusion 1.x with a learned placeholder token and method-specific parts.

    Args:
        pretrained_model: hub id or local folder in the diffusers layout; every component loads from it.
        placeholder: the new token standing for the concept in prompts, e.g. ``'S*'``.
        initialize_token: one CLIP token whose embedding initialises the placeholder's.
        gradient_checkpointing: recompute the frozen UNet's blocks in the backward pass (less memory).
        frozen_dtype: ``'bf16'`` / ``'fp16'`` holds the frozen VAE, text encoder and UNet in half
            precision (trainable weights and optimizer state stay fp32); the model then runs under
            autocast. ``None``: everything fp32.
    """
    #: Substrings of the names of all trainable parameters (optimizer groups, saving, loading, tests).
    trainable_markers = ('trainable_embeddings',)
    #: Shown in progress bars and errors.
    method_name = 'sampling'
    #: Trained weights are exported as ``{weights_name}.safetensors``.
    weights_name = 'weights'
    #: Whether ``infer`` takes an ``image_reference``.
    needs_reference = False

    def __init__(self, pretrained_model: str, placeholder: str = 'S*', initialize_token: str | None = None,
                 gradient_checkpointing: bool = False, frozen_dtype: str | None = None, num_vectors: int = 1,
                 data_preprocessor=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor or dict(type=ViCoDataPreprocessor),
                         init_cfg=init_cfg)
        self.frozen_dtype = HALF_DTYPES.get(frozen_dtype, 'invalid') if frozen_dtype else None
        if self.frozen_dtype == 'invalid':  # before Stable Diffusion loads
            raise InvalidValueError(f'frozen_dtype={frozen_dtype!r}: use None (fp32), "bf16" or "fp16".')
        self.pretrained_model = pretrained_model
        self.placeholder, self.initialize_token = placeholder, initialize_token
        parts = load_stable_diffusion(pretrained_model)
        self.tokenizer = parts['tokenizer']
        self.text_encoder, self.vae, self.unet = parts['text_encoder'], parts['vae'], parts['unet']
        self.scheduler_config = parts['scheduler_config']
        self.num_vectors = num_vectors
        self.placeholder_id = None  # methods without a learned token (DreamBooth) pass placeholder=None
        if placeholder is None and 'trainable_embeddings' in self.trainable_markers:
            raise InvalidValueError(f'placeholder=None: {type(self).__name__} learns a new word for the concept; give '
                                    'it as a string that is not a word, e.g. "S*" or "<sks>" (--cfg-options '
                                    'placeholder=S*).')
        if placeholder is not None:
            self.placeholder_id = add_placeholder(self.tokenizer, self.text_encoder, placeholder, initialize_token,
                                                  num_vectors)
        self.cache_latents = True
        self.latent_cache = {}  # (path, flip, H, W) -> (posterior mean, std) of a training image
        self.build_method()
        for name, param in self.named_parameters():
            param.requires_grad_(self.is_trainable_name(name))
        self.gradient_checkpointing = bool(gradient_checkpointing)
        if self.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        if self.frozen_dtype is not None:
            for param in self.parameters():
                if not param.requires_grad:
                    param.data = param.data.to(self.frozen_dtype)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor)
        self.noise_scheduler = DDPMScheduler.from_config(self.scheduler_config)
        # checkpoints hold only what trains: the frozen base comes from pretrained_model
        self.register_state_dict_post_hook(PersonalizedStableDiffusion._keep_trainable)
        self.register_load_state_dict_post_hook(PersonalizedStableDiffusion._ignore_missing_frozen)

    def build_method(self) -> None:
        """Add the method's own modules (called after loading, before the trainable set is fixed)."""

    def is_trainable_name(self, name: str) -> bool:
        return any(m in name for m in self.trainable_markers)

    @staticmethod
    def _keep_trainable(module, state_dict, prefix, local_metadata):
        for key in [k for k in state_dict if k.startswith(prefix) and not module.is_trainable_name(k[len(prefix):])]:
            del state_dict[key]

    @staticmethod
    def _ignore_missing_frozen(module, incompatible_keys):
        missing = incompatible_keys.missing_keys
        missing[:] = [k for k in missing if module.is_trainable_name(k)]

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def prompt_token(self) -> str | None:
        """The word prompts use for the concept (the placeholder; DreamBooth's identifier), None for a base
        that learned none: DreamBench's prompts then name the class alone ("a dog in the snow")."""
        return self.placeholder

    def init_weights(self):
        """Nothing to initialise: the base is pretrained, new modules keep PyTorch's defaults."""

    def autocast(self):
        """Mixed precision around the model's own computations when the frozen base is held in half."""
        if self.frozen_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.frozen_dtype)

    # ---------------------------------------------------------------- text and images
    def tokenize(self, prompts: list) -> torch.Tensor:
        if self.placeholder is not None and self.num_vectors > 1:  # 'S*' stands for all its vectors: 'S* S*_1 S*_2'
            expanded = ' '.join(placeholder_tokens(self.placeholder, self.num_vectors))
            prompts = [p.replace(self.placeholder, expanded) for p in prompts]
        return self.tokenizer(prompts, padding='max_length', max_length=self.tokenizer.model_max_length,
                              truncation=True, return_tensors='pt').input_ids.to(self.device)

    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids, attention_mask=None)[0]

    def token_positions(self, input_ids: torch.Tensor):
        """Per row: the placeholder's column (end-of-text's where it is absent) and end-of-text's
        (by equality with the tokenizer's eos id: added tokens have larger ids, so argmax is wrong)."""
        eot = (input_ids == self.tokenizer.eos_token_id).int().argmax(dim=1)
        if self.placeholder_id is None:
            return eot, eot
        is_ph = input_ids == self.placeholder_id
        ph = torch.where(is_ph.any(dim=1), is_ph.int().argmax(dim=1), eot)
        return ph, eot

    def encode_images(self, images: torch.Tensor, generator=None, sample: bool = True) -> torch.Tensor:
        """Scaled VAE latents of ``[-1, 1]`` images: a posterior sample (as the original), or with
        ``sample=False`` the posterior mean (no randomness)."""
        posterior = self.vae.encode(images.to(self.device, self.vae.dtype)).latent_dist
        latents = posterior.sample(generator) if sample else posterior.mode()
        return latents * self.vae.config.scaling_factor

    def encode_training_images(self, images: torch.Tensor, data_samples, kind: str = 'img') -> torch.Tensor:
        """Posterior samples of training images; with ``cache_latents`` each image (and each flip of it)
        is VAE-encoded once and its posterior mean and std kept, then sampled every step."""
        keys = [_cache_key(s, kind, images.shape[-2:]) for s in data_samples]
        if not self.cache_latents or None in keys:
            return self.encode_images(images)
        for i, key in enumerate(keys):
            if key not in self.latent_cache:  # one image per encode: the same numbers whatever the batch
                posterior = self.vae.encode(images[i:i + 1].to(self.device, self.vae.dtype)).latent_dist
                self.latent_cache[key] = (posterior.mean[0], posterior.std[0])
        mean = torch.stack([self.latent_cache[k][0] for k in keys])
        std = torch.stack([self.latent_cache[k][1] for k in keys])
        return (mean + std * randn_tensor(mean.shape, device=mean.device, dtype=mean.dtype)) * \
            self.vae.config.scaling_factor

    # ---------------------------------------------------------------- training
    def forward(self, inputs, data_samples=None, mode: str = 'loss'):
        if mode == 'loss':
            with self.autocast():
                return self.loss(inputs, data_samples)
        raise ValueError(f'{type(self).__name__}.forward supports mode="loss" only (got {mode!r}); '
                         'sample with .infer().')

    def noised_latents(self, latents: torch.Tensor):
        """``(noise, timesteps, noisy latents)`` for the diffusion loss, from the global random state."""
        noise = torch.randn(latents.shape, dtype=latents.dtype, device=latents.device)  # not _like: layout-free
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (latents.shape[0],),
                                  device=self.device)
        return noise, timesteps, self.noise_scheduler.add_noise(latents, noise, timesteps)

    def diffusion_loss(self, pred, latents, noise, timesteps) -> torch.Tensor:
        if self.noise_scheduler.config.prediction_type == 'v_prediction':
            target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        else:
            target = noise
        return F.mse_loss(pred.float(), target.float())

    # ---------------------------------------------------------------- sampling
    def predict_noise(self, latents, timesteps, context, **condition) -> torch.Tensor:
        return self.unet(latents, timesteps, encoder_hidden_states=context, return_dict=False)[0]

    def sampling_condition(self, halves, input_ids, n, generator, height, width, **kwargs) -> dict:
        """Extra keyword arguments of :meth:`predict_noise` for one sampling run (none by default)."""
        return {}

    def infer(self, prompt, height: int | None = None, width: int | None = None, num_inference_steps: int = 50,
              guidance_scale: float = 7.5, negative_prompt=None, num_images_per_prompt: int = 1, eta: float = 0.0,
              generator=None, seed: int | list | None = None, latents: torch.Tensor | None = None,
              show_progress: bool = True, **aesthetic) -> dict:
        """Sample the concept: ``{'samples': [PIL.Image, ...]}`` in prompt-major order (DDIM, guidance).
        ``generator`` / ``seed``: one for the call, or a list with one per image (prompt-major), so that
        each image is the one a call for it alone makes with its own generator or seed.
        ``aesthetic_embedding``, ``aesthetic_steps``, ``aesthetic_lr``, ``aesthetic_clip``: see :meth:`sample`."""
        return self.sample(prompt, height, width, num_inference_steps, guidance_scale, negative_prompt,
                           num_images_per_prompt, eta, generator, seed, latents, show_progress, **aesthetic)

    @torch.no_grad()
    @under_autocast
    def sample(self, prompt, height=None, width=None, num_inference_steps=50, guidance_scale=7.5,
               negative_prompt=None, num_images_per_prompt=1, eta=0.0, generator=None, seed=None,
               latents=None, show_progress=True, aesthetic_embedding=None, aesthetic_steps: int = 0,
               aesthetic_lr: float = 1e-4, aesthetic_clip: str | None = None, **condition) -> dict:
        """DDIM with classifier-free guidance, step for step as diffusers' StableDiffusionPipeline.

        Returns ``{'samples': [PIL.Image, ...]}`` in prompt-major order; ``condition`` goes to
        :meth:`sampling_condition`; ``generator`` / ``seed`` may be lists, one per image. Aesthetic Gradients (the original's flags and defaults): with an
        ``aesthetic_embedding`` (file of tools/make_aesthetic_embedding.py, or a tensor) and
        ``aesthetic_steps`` > 0, each prompt's context comes from a copy of the text encoder tuned for
        that many Adam steps at ``aesthetic_lr`` towards it (``aesthetic_clip``: the CLIP folder whose
        text projection to use; default: the one the embedding was made with).
        """
        # 0. arguments
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        height, width = self._check_infer_args(prompts, height, width, num_inference_steps, num_images_per_prompt,
                                               guidance_scale, eta)
        negatives = self._negative_prompts(negative_prompt, len(prompts))
        n, p = num_images_per_prompt, len(prompts)
        generator = self._generators(generator, seed, p * n)
        do_cfg = guidance_scale > 1.0
        self._warn_about_prompts(prompts)
        checks.integer('aesthetic_steps', aesthetic_steps, 0, '0: off; e.g. 10')
        checks.number('aesthetic_lr', aesthetic_lr, minimum=0, hint='1e-4 is the default')
        if aesthetic_embedding is not None and aesthetic_steps == 0:
            warnings.warn('aesthetic_embedding is ignored with aesthetic_steps=0 (Aesthetic Gradients off); give '
                          'aesthetic_steps > 0 (e.g. 10) to steer towards it.')

        # 1. text contexts (the pipeline's order: unconditional half first)
        input_ids = self.tokenize(prompts)
        if aesthetic_embedding is not None and aesthetic_steps > 0:
            cond = self.aesthetic_context(input_ids, aesthetic_embedding, aesthetic_steps, aesthetic_lr, aesthetic_clip)
        else:
            cond = self.encode_text(input_ids)
        halves = [self.encode_text(self.tokenize(negatives)), cond] if do_cfg else [cond]
        context = torch.cat([h.repeat_interleave(n, dim=0) for h in halves])

        # 2. timesteps and initial noise
        scheduler = DDIMScheduler.from_config(self.scheduler_config)
        scheduler.set_timesteps(num_inference_steps, device=self.device)
        shape = (p * n, self.unet.config.in_channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        dtype = torch.float32 if self.frozen_dtype else cond.dtype  # the sampler's state stays fp32
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=self.device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise InvalidValueError(f'latents has shape {tuple(latents.shape)}; expected {shape} for {p} prompt(s) x '
                             f'{n} image(s) at {height}x{width}.')
        latents = latents.to(self.device, dtype) * scheduler.init_noise_sigma

        # 3. the method's own conditioning (ViCo: the reference stream, computed once)
        extra = self.sampling_condition(halves, input_ids, n, generator, height, width, **condition)

        # 4. denoising loop
        for t in tqdm(scheduler.timesteps, desc=f'{self.method_name} sampling', disable=not show_progress):
            model_input = scheduler.scale_model_input(torch.cat([latents] * len(halves)), t)
            noise = self.predict_noise(model_input, t, context, **extra)
            if do_cfg:
                uncond, text = noise.chunk(2)
                noise = uncond + guidance_scale * (text - uncond)
            latents = scheduler.step(noise, t, latents, eta=eta, generator=generator, return_dict=False)[0]

        # 5. decode
        images = self.vae.decode(latents / self.vae.config.scaling_factor, return_dict=False, generator=generator)[0]
        samples = self.image_processor.postprocess(images, output_type='pil', do_denormalize=[True] * len(images))
        return dict(samples=samples)

    def aesthetic_context(self, input_ids, embedding, steps: int, lr: float, clip: str | None) -> torch.Tensor:
        """The conditional context under Aesthetic Gradients (the model's own weights stay untouched)."""
        target, clip = check_aesthetic_embedding(embedding, clip, self.text_encoder.config.hidden_size)
        if getattr(self, '_text_projection', (None,))[0] != clip:
            from transformers import CLIPModel
            projection = CLIPModel.from_pretrained(clip).text_projection.to(self.device).float().requires_grad_(False)
            self._text_projection = (clip, projection)
        _, eot = self.token_positions(input_ids)
        context = aesthetic_text_context(self.text_encoder, self._text_projection[1], input_ids, eot,
                                         target.to(self.device), steps, lr)
        return context.to(self.text_encoder.dtype)

    def _warn_about_prompts(self, prompts: list) -> None:
        """Warn (naming them) about prompts past CLIP's 77 tokens, and when no prompt asks for the concept
        (the placeholder is absent, or cut off by the token limit)."""
        limit = self.tokenizer.model_max_length
        lengths = [len(ids) for ids in self.tokenizer(prompts).input_ids]
        long = [f'{p!r} ({n} tokens)' for p, n in zip(prompts, lengths) if n > limit]
        if long:
            warnings.warn(f'prompt(s) {"; ".join(long)[:500]} are longer than the {limit} tokens CLIP reads: the end is '
                          'ignored. Shorten them, and put the placeholder early.')
        if self.placeholder_id is None:
            return
        if not any(self.placeholder_id in ids for ids in self.tokenize(prompts).tolist()):
            shown = '; '.join(repr(p) for p in prompts[:5]) + (' ...' if len(prompts) > 5 else '')
            warnings.warn(f'No prompt contains the placeholder {self.placeholder!r} within CLIP\'s {limit} tokens '
                          f'({shown}), so the learned concept is not asked for. Write it into the prompt, e.g. '
                          f'"a photo of {self.placeholder}".')

    def _check_infer_args(self, prompts, height, width, steps, num_images, guidance_scale=7.5, eta=0.0):
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise InvalidValueError(f'prompt={prompts!r}: give a string or a non-empty list of strings.')
        default = self.unet.config.sample_size * self.vae_scale_factor
        height, width = height or default, width or default
        for name, value in (('height', height), ('width', width)):
            checks.image_size(name, value, default, allow_none=False)
        checks.sampling(num_inference_steps=steps, num_images_per_prompt=num_images, guidance_scale=guidance_scale,
                        eta=eta)
        return height, width

    @staticmethod
    def _generators(generator, seed, num_samples: int):
        """One generator for the whole call, or one per image (a list of ``num_samples``, prompt-major),
        from ``generator`` or ``seed`` (an int, or a list of ints: one per image). With one generator
        per image, each image equals the one a call for it alone with that generator makes."""
        given = 'generator'
        if generator is None and seed is not None:
            given = 'seed'
            if isinstance(seed, (list, tuple)):
                generator = [torch.Generator('cpu').manual_seed(int(s)) for s in seed]
            else:
                generator = torch.Generator('cpu').manual_seed(seed)
        if isinstance(generator, (list, tuple)) and len(generator) != num_samples:
            raise InvalidValueError(f'{given} has {len(generator)} entries for {num_samples} image(s) (prompts x '
                                    f'num_images_per_prompt): give one {given}, or exactly one per image, '
                                    'prompt-major.')
        return list(generator) if isinstance(generator, tuple) else generator

    @staticmethod
    def _negative_prompts(negative_prompt, num_prompts: int) -> list:
        if negative_prompt is None:
            return [''] * num_prompts
        if isinstance(negative_prompt, str):
            return [negative_prompt] * num_prompts
        negatives = list(negative_prompt)
        if len(negatives) != num_prompts:
            raise InvalidValueError(f'negative_prompt has {len(negatives)} entries for {num_prompts} prompts; '
                             'give one string, or one per prompt.')
        return negatives

    # ---------------------------------------------------------------- trained weights
    def trainable_state_dict(self) -> dict:
        """The trainable parameters only."""
        return {k: v for k, v in self.state_dict().items() if self.is_trainable_name(k)}

    def weights_metadata(self) -> dict:
        return dict(method=type(self).__name__, placeholder=self.placeholder, num_vectors=self.num_vectors,
                    initialize_token=self.initialize_token, pretrained_model=self.pretrained_model)

    def save_weights(self, path: str) -> str:
        """Write the trainable parameters and their metadata to a safetensors file."""
        return save_weights_file(path, self.trainable_state_dict(), self.weights_metadata())

    def read_weights(self, path: str) -> tuple:
        """``(state, metadata it was made with)`` of a file of :meth:`save_weights`."""
        return read_weights_file(path)

    def load_weights(self, path: str) -> None:
        """Load a file of :meth:`save_weights`, checking keys, shapes and what it was made for."""
        state, saved = self.read_weights(path)
        self.load_state_dict(check_weights(path, state, saved, self.trainable_state_dict(), self.weights_metadata()),
                             strict=False)

    def export_extras(self, folder: str) -> None:
        """Files for other tools, written beside the weights: the placeholder for diffusers, and for
        AUTOMATIC1111's WebUI and ComfyUI."""
        if self.placeholder is not None:
            self.save_learned_embeds(os.path.join(folder, 'learned_embeds.safetensors'))
            atomic_save_safetensors(os.path.join(folder, 'embedding_a1111.safetensors'),
                                    convert_embedding_to_a1111(self.trainable_state_dict()), {'format': 'pt'})

    def save_learned_embeds(self, path: str) -> str:
        """The placeholder's embedding as ``{placeholder: (768,)}`` (``(n, 768)`` for n vectors)
        safetensors, the format that diffusers' ``load_textual_inversion`` reads."""
        vectors = self.text_encoder.get_input_embeddings().trainable_embeddings
        return atomic_save_safetensors(path, {self.placeholder: vectors[0] if len(vectors) == 1 else vectors},
                                       {'format': 'pt'})
