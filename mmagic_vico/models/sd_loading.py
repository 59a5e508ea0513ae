"""Loading the frozen Stable Diffusion components from one diffusers-layout folder or hub id, or from a
single-file SD 1.x checkpoint (``.safetensors`` / ``.ckpt``, the CompVis layout)."""
import os

from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from mmagic_vico.convert.checkpoint_file import is_checkpoint_file
from mmagic_vico.utils.errors import InvalidValueError, MissingFileError
from .sd_single_file import load_single_file_sd
from .tiny_sd import ensure_tiny_sd

SUBFOLDERS = ('unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler')


def resolve_pretrained(pretrained_model: str) -> str:
    """Check a local folder's layout (building the embedded tiny model if it is the one missing)."""
    if not isinstance(pretrained_model, str) or not pretrained_model:
        raise InvalidValueError(f'pretrained_model={pretrained_model!r}: give a hub id such as '
                                '"stable-diffusion-v1-5/stable-diffusion-v1-5", a local folder in the diffusers layout '
                                'or a single-file SD 1.x checkpoint (.safetensors / .ckpt).')
    ensure_tiny_sd(pretrained_model)
    looks_local = os.path.isabs(pretrained_model) or pretrained_model.startswith('.') or os.path.exists(pretrained_model)
    if looks_local:
        if not os.path.isdir(pretrained_model):
            raise MissingFileError(f'pretrained_model={pretrained_model!r} is not a folder. Give a local folder in '
                                   'the diffusers layout (model_index.json, unet/, vae/, text_encoder/, tokenizer/, '
                                   'scheduler/), a single-file SD 1.x checkpoint (.safetensors / .ckpt) or a hub id.')
        missing = [s for s in SUBFOLDERS if not os.path.isdir(os.path.join(pretrained_model, s))]
        if missing:
            raise MissingFileError(f'pretrained_model={pretrained_model!r} lacks {missing}: a Stable Diffusion folder '
                                   'in the diffusers layout has unet/, vae/, text_encoder/, tokenizer/ and scheduler/ '
                                   '(e.g. a snapshot of stable-diffusion-v1-5/stable-diffusion-v1-5).')
    return pretrained_model


def load_stable_diffusion(pretrained_model: str) -> dict:
    """Load tokenizer, text encoder, VAE, UNet (frozen, eval mode) and the scheduler config."""
    if is_checkpoint_file(pretrained_model):
        return _frozen(load_single_file_sd(pretrained_model))
    path = resolve_pretrained(pretrained_model)
    try:
        parts = dict(
            tokenizer=CLIPTokenizer.from_pretrained(path, subfolder='tokenizer'),
            text_encoder=CLIPTextModel.from_pretrained(path, subfolder='text_encoder'),
            vae=AutoencoderKL.from_pretrained(path, subfolder='vae'),
            unet=UNet2DConditionModel.from_pretrained(path, subfolder='unet'),
            scheduler_config=dict(DDIMScheduler.load_config(path, subfolder='scheduler')))
    except OSError as err:
        offline = os.environ.get('HF_HUB_OFFLINE', '0') not in ('0', '', 'false', 'False')
        raise MissingFileError(  # a user's setting, in one line (an OSError still, for callers that catch those)
            f'Could not load Stable Diffusion from pretrained_model={pretrained_model!r}: it is not a local folder and '
            f'the Hugging Face hub {"is switched off (HF_HUB_OFFLINE=1)" if offline else "could not be reached or has no such repo"}. '
            'Download the model where you have network (huggingface-cli download '
            'stable-diffusion-v1-5/stable-diffusion-v1-5 --local-dir /path/to/sd15) and pass the folder: '
            '--cfg-options model.pretrained_model=/path/to/sd15') from err
    return _frozen(parts)


def _frozen(parts: dict) -> dict:
    for name in ('text_encoder', 'vae', 'unet'):
        parts[name].requires_grad_(False).eval()
    return parts
