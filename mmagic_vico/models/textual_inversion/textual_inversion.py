"""Textual Inversion (Gal et al., "An Image is Worth One Word", arXiv 2208.01618): only the
placeholder's embedding (optionally several vectors) trains; the whole Stable Diffusion is frozen."""
import torch

from mmagic_vico.registry import MODELS
from ..personalized_sd import PersonalizedStableDiffusion, prompts_of


@MODELS.register_module()
class TextualInversion(PersonalizedStableDiffusion):
    """Args: those of :class:`PersonalizedStableDiffusion`, with ``num_vectors`` the number of
    embedding vectors the placeholder stands for (1 in the paper)."""
    method_name = 'Textual Inversion'
    weights_name = 'textual_inversion_weights'

    def loss(self, inputs: dict, data_samples) -> dict:
        """The diffusion loss of the target images (``inputs['img']``, ``[-1, 1]``) and their captions."""
        with torch.no_grad():
            latents = self.encode_training_images(inputs['img'], data_samples, 'img')
        noise, timesteps, noisy = self.noised_latents(latents)
        context = self.encode_text(self.tokenize(prompts_of(data_samples)))
        pred = self.predict_noise(noisy, timesteps, context)
        return dict(loss_diffusion=self.diffusion_loss(pred, latents, noise, timesteps))
