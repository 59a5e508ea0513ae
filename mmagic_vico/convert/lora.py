"""DreamBooth-LoRA between diffusers' ``pytorch_lora_weights.safetensors`` and the kohya layout
(``lora_unet_<module>.lora_down.weight`` / ``.lora_up.weight`` / ``.alpha``) A1111 and ComfyUI load.

Both directions are diffusers' own: ``convert_state_dict_to_kohya`` (from PEFT names) one way, the reader
of kohya files (``lora_state_dict``) and the PEFT / diffusers renames the other.
"""
from diffusers import StableDiffusionPipeline
from diffusers.utils import (convert_state_dict_to_diffusers, convert_state_dict_to_kohya,
                             convert_unet_state_dict_to_peft)


def convert_lora_to_kohya(state_dict: dict) -> dict:
    """Diffusers' LoRA file (``unet.<module>.lora.down.weight``) -> kohya; ``alpha`` = rank: the scale 1 that
    diffusers applies to a file without alphas."""
    kohya = convert_state_dict_to_kohya(convert_unet_state_dict_to_peft(state_dict))
    return {k: v.float() if k.endswith('.alpha') else v for k, v in kohya.items()}


def convert_kohya_to_lora(state_dict: dict) -> dict:
    """Kohya -> diffusers' LoRA layout, each ``alpha / rank`` folded into its up weights (then scale 1)."""
    folded = {}
    for key, value in state_dict.items():
        name, _, kind = key.partition('.')
        if kind == 'alpha':
            continue
        alpha = state_dict.get(f'{name}.alpha')
        if kind == 'lora_up.weight' and alpha is not None:
            value = value * (float(alpha) / state_dict[f'{name}.lora_down.weight'].shape[0])
        folded[key] = value
    converted, _ = StableDiffusionPipeline.lora_state_dict(folded)
    return convert_state_dict_to_diffusers(convert_unet_state_dict_to_peft(converted))
