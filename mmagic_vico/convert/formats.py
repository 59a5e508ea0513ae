"""The formats ``tools/convert_weights.py`` knows and, per (source, target) pair, how a file of one becomes a
file of the other: read, one pure ``convert_<from>_to_<to>``, write (atomically)."""
import os

import torch
from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel

from mmagic_vico.models.sd_loading import load_stable_diffusion
from mmagic_vico.models.sd_single_file import load_single_file_sd, save_single_file_sd
from mmagic_vico.models.tiny_sd import SD15_UNET_CONFIG
from mmagic_vico.models.vico.image_cross_attention import text_transformer_layers
from mmagic_vico.models.weights import atomic_save_safetensors, read_weights_file, save_weights_file
from mmagic_vico.utils import checks
from mmagic_vico.utils.atomic import atomic_folder, atomic_write
from mmagic_vico.utils.errors import InvalidValueError, MissingFileError
from .checkpoint_file import read_tensors
from .embedding import convert_embedding_to_a1111, convert_embedding_to_a1111_pt, placeholder_embedding
from .lora import convert_kohya_to_lora, convert_lora_to_kohya
from .vico_layout import image_attention_layers
from .vico_mmagic import convert_vico_mmagic_to_vico
from .vico_original import convert_vico_original_to_vico, read_vico_original

#: Every format, as ``--help`` lists it.
FORMATS = {
    'compvis': 'single-file SD 1.x checkpoint, CompVis keys (.safetensors, or .ckpt read weights-only): '
               'A1111, ComfyUI, diffusers from_single_file, and pretrained_model here',
    'diffusers': 'SD 1.x folder in the diffusers layout (unet/ vae/ text_encoder/ tokenizer/ scheduler/)',
    'dreambooth': 'dreambooth_weights.safetensors of tools/train.py, on the base model it names (or --base)',
    'vico': 'vico_weights.safetensors of this project (ViCo.load_vico_weights, tools/infer.py --weights)',
    'vico-original': "the ViCo authors' cross_attention.pt / cross_attention-N.pt, with embeddings.pt / "
                     'embeddings_gs-N.pt beside it (or --embeddings)',
    'vico-mmagic': "mmagic's ViCo weights (its extract_vico_parameters output, .pth or .safetensors); they load "
                   "into a model built with image_cross_layers='mmagic'",
    'embedding': 'a placeholder embedding: vico_weights, textual_inversion_weights or learned_embeds .safetensors',
    'a1111': 'embedding as .safetensors holding one tensor, emb_params: A1111, ComfyUI, diffusers '
             'load_textual_inversion',
    'a1111-pt': "embedding as A1111's .pt (string_to_param, plain containers: weights-only loadable)",
    'lora': "DreamBooth-LoRA in diffusers' layout (pytorch_lora_weights.safetensors, load_lora_weights)",
    'kohya': 'LoRA in the kohya layout (lora_unet_*.lora_down / lora_up / alpha): A1111, ComfyUI, '
             'load_lora_weights',
}


def _sd1x_flags(layers: list) -> list:
    """``image_cross_layers`` flags (down -> mid -> up over SD 1.x's 16 text transformer layers) of layer names."""
    with torch.device('meta'):
        unet = UNet2DConditionModel(**SD15_UNET_CONFIG)
    return [int(name in layers) for name, _ in text_transformer_layers(unet)]


def _save_vico(state: dict, output: str, options) -> str:
    embedding = placeholder_embedding(state)
    metadata = dict(method='ViCo', placeholder=options.placeholder, num_vectors=int(embedding.shape[0]),
                    image_cross_layers=_sd1x_flags(image_attention_layers(state)))
    return save_weights_file(output, state, metadata)


def _tensors(path: str, what: str) -> dict:
    return read_tensors(path, what)[0]


def _save_safetensors(path: str, state: dict) -> str:
    return atomic_save_safetensors(path, state, {'format': 'pt'})


def compvis_to_diffusers(source: str, output: str, options) -> str:
    parts = load_single_file_sd(source)  # convert_compvis_to_diffusers, configs off the shapes
    pipe = StableDiffusionPipeline(
        vae=parts['vae'], text_encoder=parts['text_encoder'], tokenizer=parts['tokenizer'], unet=parts['unet'],
        scheduler=PNDMScheduler.from_config(parts['scheduler_config']), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    with atomic_folder(output) as tmp:
        pipe.save_pretrained(tmp)
    return output


def diffusers_to_compvis(source: str, output: str, options, parts: dict | None = None) -> str:
    parts = parts or load_stable_diffusion(source)
    return save_single_file_sd(output, parts['unet'], parts['vae'], parts['text_encoder'], parts['scheduler_config'])


def dreambooth_to_compvis(source: str, output: str, options) -> str:
    """The fine-tuned UNet (and text encoder) over the frozen rest of the base model, as one file."""
    state, saved = read_weights_file(source)
    if saved.get('method') != 'DreamBooth':
        raise InvalidValueError(f'{source} holds {saved.get("method")} weights, not DreamBooth\'s; give the '
                                'dreambooth_weights.safetensors of a DreamBooth run (a LoRA converts with lora kohya).')
    base = options.base or saved.get('pretrained_model')
    if not base:
        raise InvalidValueError(f'{source} does not name its base model; give it with --base (folder or single file).')
    parts = load_stable_diffusion(base)
    for name in ('unet', 'text_encoder'):
        prefix = f'{name}.'
        tuned = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if tuned:
            unexpected = parts[name].load_state_dict(tuned, strict=False).unexpected_keys
            if unexpected:
                raise InvalidValueError(f'{source} does not fit the {name} of {base!r} (e.g. {unexpected[:2]}); give '
                                        'the base it was trained on with --base.')
    return diffusers_to_compvis(source, output, options, parts)


def vico_original_to_vico(source: str, output: str, options) -> str:
    return _save_vico(convert_vico_original_to_vico(read_vico_original(source, options.embeddings)), output, options)


def vico_mmagic_to_vico(source: str, output: str, options) -> str:
    return _save_vico(convert_vico_mmagic_to_vico(_tensors(source, 'mmagic ViCo weights')), output, options)


def embedding_to_a1111(source: str, output: str, options) -> str:
    return _save_safetensors(output, convert_embedding_to_a1111(_tensors(source, 'embedding')))


def embedding_to_a1111_pt(source: str, output: str, options) -> str:
    content = convert_embedding_to_a1111_pt(_tensors(source, 'embedding'), name=options.placeholder)
    return atomic_write(output, lambda tmp: torch.save(content, tmp))


def lora_to_kohya(source: str, output: str, options) -> str:
    return _save_safetensors(output, convert_lora_to_kohya(_tensors(source, 'LoRA weights')))


def kohya_to_lora(source: str, output: str, options) -> str:
    return _save_safetensors(output, convert_kohya_to_lora(_tensors(source, 'kohya LoRA')))


#: The formats written as a folder, not a file.
FOLDER_FORMATS = ('diffusers',)

#: ``(source, target) -> run(source path, output path, options)``.
CONVERSIONS = {
    ('compvis', 'diffusers'): compvis_to_diffusers,
    ('diffusers', 'compvis'): diffusers_to_compvis,
    ('dreambooth', 'compvis'): dreambooth_to_compvis,
    ('vico-original', 'vico'): vico_original_to_vico,
    ('vico-mmagic', 'vico'): vico_mmagic_to_vico,
    ('embedding', 'a1111'): embedding_to_a1111,
    ('embedding', 'a1111-pt'): embedding_to_a1111_pt,
    ('lora', 'kohya'): lora_to_kohya,
    ('kohya', 'lora'): kohya_to_lora,
}


def convert_file(source_format: str, target_format: str, source: str, output: str, options) -> str:
    """Run one conversion, checking the pair and the paths before anything is read."""
    run = CONVERSIONS.get((source_format, target_format))
    if run is None:
        pairs = ', '.join(f'{a} -> {b}' for a, b in CONVERSIONS)
        raise InvalidValueError(f'no conversion from {source_format!r} to {target_format!r}; the pairs are: {pairs}.')
    if not os.path.exists(source):
        raise MissingFileError(f'{source_format} input {source!r} does not exist; give the path of what to convert '
                               f'({source_format}: {FORMATS[source_format]}).')
    if os.path.abspath(source) == os.path.abspath(output):
        raise InvalidValueError(f'the output {output!r} is the input: write the converted file elsewhere.')
    if target_format in FOLDER_FORMATS:  # before the work: a file, or a folder that cannot be written, fails here
        checks.output_dir(output, 'OUTPUT')
    else:
        checks.output_file(output, 'OUTPUT')
    return run(source, output, options)
