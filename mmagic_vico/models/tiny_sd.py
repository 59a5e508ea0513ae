"""The embedded default: a tiny, offline Stable Diffusion 1.5 of the same architecture.

Same block types, 16 text transformer layers, a 4-level VAE, a CLIP text model with CLIP's 49408
vocabulary, SD 1.5's scheduler config and the real CLIP BPE tokenizer; only the widths are small
and the weights random (seeded). It is saved in the diffusers layout, so it loads through exactly
the code path of real SD 1.5.
"""
import gzip
import importlib.metadata
import json
import os
import shutil
import tempfile

import torch

#: A missing folder of this name is built on first use.
TINY_SD_DIRNAME = 'tiny_sd15'

#: Stable Diffusion 1.5's UNet config (diffusers); the tiny model changes only the widths.
SD15_UNET_CONFIG = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=('CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'),
    up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'),
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32)
SD15_SCHEDULER_CONFIG = dict(
    beta_start=0.00085, beta_end=0.012, beta_schedule='scaled_linear', num_train_timesteps=1000,
    clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1, trained_betas=None)

SD15_VAE_CONFIG = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, norm_num_groups=32,
    block_out_channels=(128, 256, 512, 512), sample_size=512,
    down_block_types=('DownEncoderBlock2D',) * 4, up_block_types=('UpDecoderBlock2D',) * 4)
SD15_TEXT_CONFIG = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
    max_position_embeddings=77, hidden_act='quick_gelu', projection_dim=768,
    bos_token_id=0, eos_token_id=2, pad_token_id=1)  # SD 1.5's text_encoder config carries these legacy ids

TINY_UNET_CONFIG = dict(SD15_UNET_CONFIG, sample_size=16, block_out_channels=(32, 32, 64, 64), cross_attention_dim=32)
TINY_VAE_CONFIG = dict(SD15_VAE_CONFIG, layers_per_block=1, norm_num_groups=8, block_out_channels=(8, 16, 32, 32),
                       sample_size=128)
TINY_TEXT_CONFIG = dict(SD15_TEXT_CONFIG, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, projection_dim=32)

BPE_FILE = 'bpe_simple_vocab_16e6.txt.gz'
BPE_PACKAGES = ('open_clip_torch', 'clip-anytorch')


def find_bpe_file() -> str:
    """Path of CLIP's BPE merges file inside an installed PyPI package (no import of that package)."""
    for package in BPE_PACKAGES:
        try:
            files = importlib.metadata.files(package) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for f in files:
            if f.name == BPE_FILE:
                return str(f.locate())
    raise FileNotFoundError(
        f'The CLIP BPE vocabulary ({BPE_FILE}) ships in open_clip_torch; install it without its dependencies '
        '(they would pull torchvision): pip install --no-deps open-clip-torch==3.3.0')


def write_clip_tokenizer_files(folder: str) -> None:
    """Write CLIP's vocab.json / merges.txt (the files of SD 1.5's tokenizer folder) from the BPE file."""
    with gzip.open(find_bpe_file(), 'rt', encoding='utf-8') as f:
        merges = f.read().split('\n')[1:49152 - 256 - 2 + 1]
    chars = _byte_chars()
    vocab = chars + [c + '</w>' for c in chars] + [''.join(m.split()) for m in merges]
    vocab += ['<|startoftext|>', '<|endoftext|>']
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'vocab.json'), 'w', encoding='utf-8') as f:
        json.dump({token: i for i, token in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(folder, 'merges.txt'), 'w', encoding='utf-8') as f:
        f.write('#version: 0.2\n' + '\n'.join(merges) + '\n')
    special = dict(bos_token='<|startoftext|>', eos_token='<|endoftext|>', unk_token='<|endoftext|>',
                   pad_token='<|endoftext|>')
    with open(os.path.join(folder, 'tokenizer_config.json'), 'w', encoding='utf-8') as f:
        json.dump(dict(special, tokenizer_class='CLIPTokenizer', model_max_length=77, do_lower_case=True), f, indent=2)
    with open(os.path.join(folder, 'special_tokens_map.json'), 'w', encoding='utf-8') as f:
        json.dump(special, f, indent=2)


def _byte_chars() -> list:
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs, extra = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return [chr(c) for c in cs]


def build_tiny_sd(folder: str, seed: int = 0, full_size: bool = False) -> str:
    """Build the tiny SD 1.5 (deterministic for a seed) and save it in the diffusers layout.

    ``full_size``: SD 1.5's real widths instead (random weights, 4.3 GB): for benchmarks.
    """
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.tiny_sd15-', dir=parent)
    try:
        write_clip_tokenizer_files(os.path.join(staging, 'tokenizer'))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            unet = UNet2DConditionModel(**(SD15_UNET_CONFIG if full_size else TINY_UNET_CONFIG))
            vae = AutoencoderKL(**(SD15_VAE_CONFIG if full_size else TINY_VAE_CONFIG))
            text_encoder = CLIPTextModel(CLIPTextConfig(**(SD15_TEXT_CONFIG if full_size else TINY_TEXT_CONFIG)))
        pipe = StableDiffusionPipeline(
            vae=vae, text_encoder=text_encoder, unet=unet, scheduler=PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG),
            tokenizer=CLIPTokenizer.from_pretrained(os.path.join(staging, 'tokenizer')),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        for name in ('unet', 'vae', 'text_encoder', 'scheduler'):
            getattr(pipe, name).save_pretrained(os.path.join(staging, name))
        pipe.save_config(staging)  # model_index.json
        try:
            os.rename(staging, folder)  # atomic: a reader sees no folder or a whole one
        except OSError:
            if not os.path.isdir(os.path.join(folder, 'unet')):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def ensure_tiny_sd(path: str) -> None:
    """Build the embedded tiny model on first use when ``path`` is its (missing) folder."""
    if os.path.basename(os.path.normpath(path)) == TINY_SD_DIRNAME and not os.path.exists(path):
        print(f'Building the embedded tiny Stable Diffusion at {os.path.relpath(path)} (once) ...', flush=True)
        build_tiny_sd(path)


TINY_CLIP_VISION_CONFIG = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                               image_size=32, patch_size=8, projection_dim=32)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def build_tiny_clip(folder: str, sd_folder: str, seed: int = 0) -> str:
    """A tiny CLIPModel (transformers layout, random vision tower and projections) whose text tower is
    the tiny SD's text encoder, as CLIP ViT-L/14's is SD 1.5's: the stand-in for Aesthetic Gradients'
    CLIP, offline."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTextModel

    text = CLIPTextModel.from_pretrained(os.path.join(sd_folder, 'text_encoder'))
    config = CLIPConfig(text_config=text.config.to_dict(), vision_config=TINY_CLIP_VISION_CONFIG,
                        projection_dim=TINY_CLIP_VISION_CONFIG['projection_dim'])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clip = CLIPModel(config)
    clip.text_model.load_state_dict(text.state_dict())
    staging = tempfile.mkdtemp(prefix='.tiny_clip-', dir=os.path.dirname(os.path.abspath(folder)) or '.')
    try:
        clip.save_pretrained(staging)
        size = TINY_CLIP_VISION_CONFIG['image_size']
        CLIPImageProcessor(size={'shortest_edge': size}, crop_size={'height': size, 'width': size},
                           image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD)).save_pretrained(staging)
        write_clip_tokenizer_files(staging)  # CLIP's own tokenizer, as a CLIP model folder carries it
        os.rename(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


TINY_DINO_CONFIG = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                        image_size=32, patch_size=8)


def build_tiny_dino(folder: str, seed: int = 0) -> str:
    """A tiny ViT of DINO ViT-S/16's family (transformers ``ViTModel`` layout, random weights, ImageNet
    normalisation), the offline stand-in of DreamBench's DINO backbone."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ViTModel(ViTConfig(**TINY_DINO_CONFIG), add_pooling_layer=False)
    size = TINY_DINO_CONFIG['image_size']
    model.save_pretrained(folder)
    ViTImageProcessor(size={'height': size, 'width': size}, image_mean=[0.485, 0.456, 0.406],
                      image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    return folder
