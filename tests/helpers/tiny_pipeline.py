"""diffusers' own StableDiffusionPipeline on a saved SD folder (the tiny default in tests), every part
loaded from disk, no progress bar: what a user of the exported files would run."""
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer


def stock_pipeline(path: str) -> StableDiffusionPipeline:
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(path, subfolder='vae'),
        text_encoder=CLIPTextModel.from_pretrained(path, subfolder='text_encoder'),
        tokenizer=CLIPTokenizer.from_pretrained(path, subfolder='tokenizer'),
        unet=UNet2DConditionModel.from_pretrained(path, subfolder='unet'),
        scheduler=DDIMScheduler.from_pretrained(path, subfolder='scheduler'),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe
