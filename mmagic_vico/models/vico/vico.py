"""ViCo: detail-preserving visual condition for personalized text-to-image generation.

Hao, Han, Zhao, Wong, arXiv 2306.00971. A frozen Stable Diffusion 1.x with one learned placeholder
token and image cross-attention blocks in the UNet decoder that attend to a clean reference image
run through the same UNet (the spec, ``shared/docs/VICO_SPEC.md``, has the exact semantics).
"""
from dataclasses import dataclass

import torch
from PIL import Image

from mmagic_vico.registry import MODELS
from mmagic_vico.utils import checks
from mmagic_vico.utils.errors import InvalidValueError
from mmagic_vico.utils.image import to_rgb
from ..personalized_sd import PersonalizedStableDiffusion, prompts_of
from .attention_store import ViCoAttentionStore
from .image_cross_attention import (DEFAULT_IMAGE_CROSS_LAYERS, IMAGE_CROSS_PRESETS, check_image_cross_preset,
                                    image_cross_flags, inject_image_cross_attention, set_attention_path,
                                    text_transformer_layers)

#: Substrings of the names of all trainable parameters (optimizer groups, saving, loading, tests).
TRAINABLE_MARKERS = ('image_cross_attention', 'trainable_embeddings')


@dataclass
class ReferenceStream:
    """The reference rows of a ViCo UNet call (R rows) and how the G generated rows map onto them."""
    latents: torch.Tensor  # (R, 4, h, w), clean
    context: torch.Tensor  # (R, L, D) text context of each reference row
    placeholder_index: torch.Tensor  # (R,) token column read for the mask / regulariser
    eot_index: torch.Tensor  # (R,)
    ref_index: torch.Tensor  # (G,) reference row of each generated row
    timesteps: torch.Tensor | None = None  # (R,) when the generated rows have per-row timesteps


@MODELS.register_module()
class ViCo(PersonalizedStableDiffusion):
    """ViCo on a frozen Stable Diffusion 1.x (the placeholder and the image attention train).

    Args (besides :class:`PersonalizedStableDiffusion`'s):
        image_cross_layers: 16 flags over the UNet's text transformer layers in down -> mid -> up order, or a
            preset: ``'original'`` (the authors' layers, the default flags) or ``'mmagic'`` (mmagic's port's
            layers, to load weights trained with mmagic).
        reg_loss_weight: lambda of the attention regulariser (paper Eq. 7).
        object_mask: True: the image attention sees only the reference's object patches (Otsu's mask,
            paper Sec. 3.3); False: every reference patch (an all-true mask), for a style, which covers
            the whole picture rather than one object in it.
        fast_path: exact speed-ups on (shared reference stream, stopped after the last image attention
            layer, cached training latents, fused attention); False runs the straightforward path.
    """
    trainable_markers = TRAINABLE_MARKERS
    method_name = 'ViCo'
    weights_name = 'vico_weights'
    needs_reference = True

    def __init__(self, pretrained_model: str, placeholder: str = 'S*', initialize_token: str | None = None,
                 image_cross_layers=DEFAULT_IMAGE_CROSS_LAYERS, reg_loss_weight: float = 5e-4,
                 object_mask: bool = True, fast_path: bool = True, gradient_checkpointing: bool = False,
                 frozen_dtype: str | None = None, data_preprocessor=None, init_cfg=None):
        checks.number('reg_loss_weight', reg_loss_weight, minimum=0, hint='the paper uses 5e-4')
        check_image_cross_preset(image_cross_layers)
        self.image_cross_layers = image_cross_layers  # flags once the UNet is loaded (build_method)
        self.reg_loss_weight = reg_loss_weight
        if not isinstance(object_mask, bool):
            raise InvalidValueError(f'object_mask={object_mask!r} must be True (object concepts) or False (styles: the '
                                    'image attention sees every reference patch).')
        self.store = ViCoAttentionStore(object_mask=object_mask)
        super().__init__(pretrained_model, placeholder, initialize_token, gradient_checkpointing=gradient_checkpointing,
                         frozen_dtype=frozen_dtype, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.use_fast_path(fast_path)

    def build_method(self) -> None:
        self.image_cross_layers = image_cross_flags(self.unet, self.image_cross_layers)
        self.image_cross_layer_names = inject_image_cross_attention(self.unet, self.image_cross_layers, self.store)

    def use_fast_path(self, fast: bool = True) -> None:
        """Switch between the fast path and the straightforward one (same results within float tolerance)."""
        self.fast_path = self.cache_latents = bool(fast)
        set_attention_path(self.unet, self.store, self.fast_path)

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
    def loss(self, inputs: dict, data_samples) -> dict:
        """Diffusion loss on the target images and the attention regulariser (paper Eq. 7).

        ``inputs``: ``img`` and ``img_ref``, ``(B, 3, H, W)`` in ``[-1, 1]``; ``data_samples``: one dict
        (or object) with a ``prompt`` per image.
        """
        with torch.no_grad():
            latents = self.encode_training_images(inputs['img'], data_samples, 'img')
            ref_latents = self.encode_training_images(inputs['img_ref'], data_samples, 'ref')
        noise, timesteps, noisy = self.noised_latents(latents)
        input_ids = self.tokenize(prompts_of(data_samples))
        context = self.encode_text(input_ids)
        ph, eot = self.token_positions(input_ids)
        b = latents.shape[0]
        reference = ReferenceStream(ref_latents, context, ph, eot, torch.arange(b, device=self.device), timesteps)
        pred = self.predict_noise(noisy, timesteps, context, reference, regularize=True)
        loss_reg = self.reg_loss_weight * torch.stack(self.store.reg_terms).sum()
        return dict(loss_diffusion=self.diffusion_loss(pred, latents, noise, timesteps), loss_reg=loss_reg)

    # ---------------------------------------------------------------- sampling
    def infer(self, prompt, image_reference=None, height: int | None = None, width: int | None = None,
              num_inference_steps: int = 50, guidance_scale: float = 7.5, negative_prompt=None,
              num_images_per_prompt: int = 1, eta: float = 0.0, generator=None, seed: int | list | None = None,
              latents: torch.Tensor | None = None, image_cross_attention_scale: float = 1.0,
              show_progress: bool = True, **aesthetic) -> dict:
        """Sample images of the concept (DDIM, classifier-free guidance; paper Sec. 3, spec Sec. 6).

        Returns ``{'samples': [PIL.Image, ...]}`` in prompt-major order. With
        ``image_cross_attention_scale=0`` the result equals diffusers' ``StableDiffusionPipeline``.
        ``generator`` / ``seed``: one, or a list with one per image; the reference latent is the VAE
        posterior mean, so an image does not depend on which other images share its call.
        ``aesthetic_*``: Aesthetic Gradients on top (see ``PersonalizedStableDiffusion.sample``).
        """
        checks.number('image_cross_attention_scale', image_cross_attention_scale, minimum=0,
                      hint='1 is the default; 0 samples without the reference, as stock Stable Diffusion')
        if image_cross_attention_scale != 0 and image_reference is None:
            raise InvalidValueError('image_reference is required: give a PIL image or path of the concept '
                                    '(or image_cross_attention_scale=0 to sample without it).')
        return self.sample(prompt, height, width, num_inference_steps, guidance_scale, negative_prompt,
                           num_images_per_prompt, eta, generator, seed, latents, show_progress,
                           image_reference=image_reference, scale=image_cross_attention_scale, **aesthetic)

    def sampling_condition(self, halves, input_ids, n, generator, height, width, image_reference=None,
                           scale=1.0) -> dict:
        if scale == 0:  # image attention off: no reference stream at all
            return {}
        return dict(reference=self._reference_stream(image_reference, height, width, halves, input_ids, n),
                    scale=scale)

    def _reference_stream(self, image, height, width, halves, input_ids, n) -> ReferenceStream:
        """One clean reference latent; one reference row per (guidance half, prompt)."""
        image = to_rgb(image).resize((width, height), Image.BICUBIC)
        pixels = self.image_processor.preprocess(image, height=height, width=width)
        # the posterior mean (the original draws one posterior sample per batch): shared by every image of
        # the call, it must not depend on any image's generator for batched images to equal unbatched ones
        ref_latent = self.encode_images(pixels, sample=False)
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

    # ---------------------------------------------------------------- trained weights
    def weights_metadata(self) -> dict:
        return super().weights_metadata() | dict(image_cross_layers=self.image_cross_layers,
                                                 object_mask=self.store.object_mask)

    def read_weights(self, path: str) -> tuple:
        """As the base, and weights made for another placement of the image attention are refused with the
        preset that builds it (``image_cross_layers='mmagic'`` for mmagic's)."""
        state, saved = super().read_weights(path)
        made_for = saved.get('image_cross_layers')
        if made_for is not None and list(made_for) != self.image_cross_layers:
            preset = next((p for p in IMAGE_CROSS_PRESETS if image_cross_flags(self.unet, p) == list(made_for)), None)
            fix = (f"image_cross_layers='{preset}' (--cfg-options model.image_cross_layers={preset})" if preset else
                   f'image_cross_layers={list(made_for)}')
            theirs = [name for (name, _), flag in zip(text_transformer_layers(self.unet), made_for) if flag]
            raise InvalidValueError(f'{path} has its image attention at {theirs}'
                                    f'{f" (the {preset!r} placement)" if preset else ""}, this model at '
                                    f'{self.image_cross_layer_names}; it loads only into a model built with {fix}.')
        return state, saved

    def save_vico_weights(self, path: str) -> str:
        """Write the trainable parameters (image attention, placeholder) and their metadata (safetensors)."""
        return self.save_weights(path)

    def load_vico_weights(self, path: str) -> None:
        """Load a file of :meth:`save_vico_weights`, checking keys, shapes, placeholder and layers."""
        self.load_weights(path)
