"""DreamBooth (Ruiz et al., arXiv 2208.12242): fine-tune the UNet (optionally the text encoder) on
"a [V] [class]" photos, with a prior-preservation loss on images of the class made by the frozen
model."""
import os

import torch

from mmagic_vico.registry import MODELS
from mmagic_vico.utils.atomic import atomic_folder
from mmagic_vico.utils import checks
from mmagic_vico.utils.errors import InvalidValueError
from ..personalized_sd import PersonalizedStableDiffusion, prompts_of
from ..sd_single_file import save_single_file_sd


@MODELS.register_module()
class DreamBooth(PersonalizedStableDiffusion):
    """Args:
        pretrained_model: as :class:`PersonalizedStableDiffusion`.
        class_prompt: the prompt of the prior-preservation images, e.g. ``'a photo of dog'``.
        prior_loss_weight: weight of the prior-preservation loss (0 turns it off).
        train_text_encoder: fine-tune the text encoder too.
        identifier: the rare existing word the captions use for the subject (``sks``); no token is added.
    """
    method_name = 'DreamBooth'
    weights_name = 'dreambooth_weights'

    def __init__(self, pretrained_model: str, class_prompt: str = 'a photo of dog', prior_loss_weight: float = 1.0,
                 train_text_encoder: bool = False, gradient_checkpointing: bool = False, identifier: str = 'sks',
                 data_preprocessor=None, init_cfg=None):
        checks.number('prior_loss_weight', prior_loss_weight, minimum=0, hint='1.0 in the paper; 0 turns it off')
        if not isinstance(class_prompt, str) or not class_prompt.strip():
            raise InvalidValueError(f'class_prompt={class_prompt!r}: give the prompt of the class images, e.g. '
                                    '"a photo of dog".')
        if 'trainable_markers' not in type(self).__dict__:  # subclasses (LoRA) name their own
            self.trainable_markers = ('unet.',) + (('text_encoder.',) if train_text_encoder else ())
        if not isinstance(identifier, str) or len(identifier.split()) != 1:
            raise InvalidValueError(f'identifier={identifier!r}: give the one rare word the captions use for the '
                                    'subject, e.g. "sks".')
        self.class_prompt, self.prior_loss_weight, self.identifier = class_prompt, prior_loss_weight, identifier
        self.train_text_encoder = train_text_encoder
        super().__init__(pretrained_model, placeholder=None, gradient_checkpointing=gradient_checkpointing,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if train_text_encoder:
            self.text_encoder.train()

    @property
    def prompt_token(self) -> str:
        return self.identifier

    def loss(self, inputs: dict, data_samples) -> dict:
        """Diffusion loss of the instance images (``img``) plus, with ``class_img``, the weighted prior
        loss of the class images under ``class_prompt`` (one batch through the UNet, as diffusers)."""
        prompts = prompts_of(data_samples)
        prior = self.prior_loss_weight > 0 and 'class_img' in inputs
        with torch.no_grad():  # each instance / class image VAE-encoded once (the shared latent cache)
            latents = self.encode_training_images(inputs['img'], data_samples, 'img')
            if prior:
                class_latents = self.encode_training_images(inputs['class_img'], data_samples, 'class')
                latents = torch.cat([latents, class_latents.to(latents)])
                prompts = prompts + [self.class_prompt] * inputs['class_img'].shape[0]
        noise, timesteps, noisy = self.noised_latents(latents)
        context = self.encode_text(self.tokenize(prompts))
        pred = self.predict_noise(noisy, timesteps, context)
        b = inputs['img'].shape[0]
        losses = dict(loss_diffusion=self.diffusion_loss(pred[:b], latents[:b], noise[:b], timesteps[:b]))
        if prior:
            losses['loss_prior'] = self.prior_loss_weight * self.diffusion_loss(
                pred[b:], latents[b:], noise[b:], timesteps[b:])
        return losses

    def export_extras(self, folder: str) -> None:
        self.save_pretrained(os.path.join(folder, 'diffusers'))

    def save_pretrained(self, folder: str) -> str:
        """The fine-tuned UNet (and text encoder) in the diffusers layout: load them into any
        StableDiffusionPipeline with ``UNet2DConditionModel.from_pretrained(folder, subfolder='unet')``."""
        with atomic_folder(folder) as tmp:  # a kill or a full disk never leaves half a model
            self.unet.save_pretrained(os.path.join(tmp, 'unet'))
            if self.train_text_encoder:
                self.text_encoder.save_pretrained(os.path.join(tmp, 'text_encoder'))
        return folder

    def save_single_file(self, path: str) -> str:
        """The fine-tuned UNet (and text encoder) with the frozen VAE (and text encoder) as one CompVis-layout
        SD 1.x safetensors file: a checkpoint for A1111, ComfyUI, diffusers' ``from_single_file``, or
        ``pretrained_model`` here."""
        return save_single_file_sd(path, self.unet, self.vae, self.text_encoder, self.scheduler_config)
