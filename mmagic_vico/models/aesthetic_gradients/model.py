"""Aesthetic Gradients as a model of its own: a frozen Stable Diffusion whose sampling is steered by
an aesthetic embedding (nothing trains; the same steering works on any trained concept's infer)."""
from mmagic_vico.registry import MODELS
from mmagic_vico.utils import checks
from mmagic_vico.utils.errors import InvalidValueError
from ..stable_diffusion import StableDiffusion


@MODELS.register_module()
class AestheticGradients(StableDiffusion):
    """Args: ``pretrained_model``; defaults of ``infer``'s ``aesthetic_embedding`` (a file of
    tools/make_aesthetic_embedding.py), ``aesthetic_steps`` (0 in the original: off), ``aesthetic_lr``
    (1e-4 in the original) and ``aesthetic_clip`` (the CLIP folder; default: the embedding's)."""
    method_name = 'Aesthetic Gradients'
    weights_name = 'aesthetic_gradients_weights'

    def __init__(self, pretrained_model: str, aesthetic_embedding: str | None = None, aesthetic_steps: int = 0,
                 aesthetic_lr: float = 1e-4, aesthetic_clip: str | None = None, data_preprocessor=None,
                 init_cfg=None):
        checks.integer('aesthetic_steps', aesthetic_steps, 0, '0: off, the original\'s default; e.g. 10')
        checks.number('aesthetic_lr', aesthetic_lr, minimum=0, hint='1e-4 is the original\'s default')
        self.aesthetic = dict(aesthetic_embedding=aesthetic_embedding, aesthetic_steps=aesthetic_steps,
                              aesthetic_lr=aesthetic_lr, aesthetic_clip=aesthetic_clip)
        super().__init__(pretrained_model, data_preprocessor=data_preprocessor, init_cfg=init_cfg)

    def loss(self, inputs, data_samples):
        raise InvalidValueError('Aesthetic Gradients trains nothing: make an embedding with '
                                'tools/make_aesthetic_embedding.py and sample with tools/infer.py.')

    def infer(self, prompt, **kwargs) -> dict:
        """As every method's ``infer``; unset ``aesthetic_*`` arguments take the model's defaults."""
        return super().infer(prompt, **({k: v for k, v in self.aesthetic.items() if v is not None}
                                        | {k: v for k, v in kwargs.items() if v is not None}))
