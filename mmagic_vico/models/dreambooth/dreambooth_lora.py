"""DreamBooth in its LoRA form (Hu et al., arXiv 2106.09685, as diffusers' train_dreambooth_lora):
only low-rank adapters on the UNet's attention projections train; the rest stays frozen."""
import os

from mmagic_vico.convert.lora import convert_lora_to_kohya
from mmagic_vico.registry import MODELS
from mmagic_vico.utils import checks
from mmagic_vico.utils.atomic import atomic_write
from mmagic_vico.utils.errors import InvalidValueError
from ..weights import atomic_save_safetensors
from .dreambooth import DreamBooth


@MODELS.register_module()
class DreamBoothLoRA(DreamBooth):
    """Args: those of :class:`DreamBooth` (without ``train_text_encoder``), plus ``rank`` of the
    adapters and ``target_modules`` (the UNet attention projections by default)."""
    method_name = 'DreamBooth LoRA'
    weights_name = 'dreambooth_lora_weights'
    trainable_markers = ('lora_',)

    def __init__(self, pretrained_model: str, rank: int = 4,
                 target_modules=('to_k', 'to_q', 'to_v', 'to_out.0'), **kwargs):
        checks.positive_int('rank', rank, "4 in diffusers' example")
        if kwargs.get('train_text_encoder'):
            raise InvalidValueError('DreamBoothLoRA adapts the UNet only; use DreamBooth for train_text_encoder=True.')
        self.rank, self.target_modules = rank, list(target_modules)
        super().__init__(pretrained_model, **kwargs)

    def build_method(self) -> None:
        from peft import LoraConfig
        self.unet.add_adapter(LoraConfig(r=self.rank, lora_alpha=self.rank, init_lora_weights='gaussian',
                                         target_modules=self.target_modules))

    def export_extras(self, folder: str) -> None:
        self.save_lora_weights(folder)

    def save_lora_weights(self, folder: str) -> str:
        """``pytorch_lora_weights.safetensors``, the file diffusers' ``load_lora_weights`` reads, and beside it
        ``kohya_lora.safetensors``, the same adapters in the kohya layout (A1111, ComfyUI)."""
        from diffusers import StableDiffusionPipeline
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict
        layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(self.unet))
        path = atomic_write(os.path.join(folder, 'pytorch_lora_weights.safetensors'), lambda tmp: (
            StableDiffusionPipeline.save_lora_weights(os.path.dirname(tmp), unet_lora_layers=layers,
                                                      weight_name=os.path.basename(tmp), safe_serialization=True)))
        kohya = convert_lora_to_kohya({f'unet.{k}': v for k, v in layers.items()})
        atomic_save_safetensors(os.path.join(folder, 'kohya_lora.safetensors'), kohya, {'format': 'pt'})
        return path

    def save_single_file(self, path: str) -> str:
        raise InvalidValueError('DreamBooth-LoRA exports its adapters, not a whole model: kohya_lora.safetensors '
                                '(A1111, ComfyUI) and pytorch_lora_weights.safetensors (diffusers), on the unchanged '
                                'base model.')
