"""The base model as it is: Stable Diffusion sampled with no concept learned (DreamBench's
unpersonalized row, whose prompts name the class alone)."""
from mmagic_vico.registry import MODELS
from mmagic_vico.utils.errors import InvalidValueError
from .personalized_sd import PersonalizedStableDiffusion


@MODELS.register_module()
class StableDiffusion(PersonalizedStableDiffusion):
    """Args: ``pretrained_model`` (as :class:`PersonalizedStableDiffusion`). Nothing trains; sampling is
    every method's ``infer``."""
    method_name = 'Stable Diffusion'
    weights_name = 'stable_diffusion_weights'
    trainable_markers = ()

    def __init__(self, pretrained_model: str, data_preprocessor=None, init_cfg=None):
        super().__init__(pretrained_model, placeholder=None, data_preprocessor=data_preprocessor, init_cfg=init_cfg)

    def loss(self, inputs, data_samples):
        raise InvalidValueError(f'{type(self).__name__} trains nothing: it samples the base model as it is. Train a '
                                'method config such as configs/vico/vico.py.')
