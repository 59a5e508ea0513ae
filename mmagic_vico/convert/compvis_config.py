"""The diffusers configs of a single-file SD 1.x checkpoint, without asking the hub for them.

What the tensors' shapes tell (widths, depths, vocabulary, context width, which levels attend) is read
from them; what they cannot tell (attention heads, group-norm groups, default sample size, the
scheduler) comes from the configs a file written by this project carries in its metadata, else from
the defaults given (Stable Diffusion 1.5's, right for every model of the CompVis SD 1.x family).
"""
import json

from mmagic_vico.utils.errors import InvalidValueError
from .compvis import diffusers_structure

#: The safetensors metadata entry holding ``{'unet': ..., 'vae': ..., 'text_encoder': ..., 'scheduler': ...}``.
CONFIGS_METADATA_KEY = 'mmagic_vico.diffusers_configs'


def _shape(state_dict: dict, key: str, dim: int) -> int:
    return int(state_dict[key].shape[dim])


def configs_from_shapes(state_dict: dict) -> dict:
    """Config entries the shapes of a diffusers-layout SD state dict determine."""
    s = diffusers_structure(state_dict)
    levels, layers = s['levels'], s['layers']
    attn2 = next(k for k in state_dict if k.startswith('unet.') and k.endswith('attn2.to_k.weight'))
    proj_in = next(k for k in state_dict if k.startswith('unet.') and k.endswith('proj_in.weight'))
    unet = dict(
        in_channels=_shape(state_dict, 'unet.conv_in.weight', 1),
        out_channels=_shape(state_dict, 'unet.conv_out.weight', 0),
        layers_per_block=layers, cross_attention_dim=_shape(state_dict, attn2, 1),
        block_out_channels=[_shape(state_dict, f'unet.down_blocks.{b}.resnets.0.conv1.weight', 0)
                            for b in range(levels)],
        down_block_types=['CrossAttnDownBlock2D' if a else 'DownBlock2D' for a in s['attention']],
        up_block_types=['CrossAttnUpBlock2D' if a else 'UpBlock2D' for a in reversed(s['attention'])],
        use_linear_projection=state_dict[proj_in].ndim == 2)
    vae = dict(
        in_channels=_shape(state_dict, 'vae.encoder.conv_in.weight', 1),
        out_channels=_shape(state_dict, 'vae.decoder.conv_out.weight', 0),
        latent_channels=_shape(state_dict, 'vae.post_quant_conv.weight', 0), layers_per_block=s['vae_layers'],
        block_out_channels=[_shape(state_dict, f'vae.encoder.down_blocks.{i}.resnets.0.conv1.weight', 0)
                            for i in range(s['vae_levels'])],
        down_block_types=['DownEncoderBlock2D'] * s['vae_levels'],
        up_block_types=['UpDecoderBlock2D'] * s['vae_levels'])
    embedding = next(k for k in state_dict if k.endswith('embeddings.token_embedding.weight'))
    positions = next(k for k in state_dict if k.endswith('embeddings.position_embedding.weight'))
    fc1 = next(k for k in state_dict if k.endswith('layers.0.mlp.fc1.weight'))
    text = dict(vocab_size=_shape(state_dict, embedding, 0), hidden_size=_shape(state_dict, embedding, 1),
                max_position_embeddings=_shape(state_dict, positions, 0), intermediate_size=_shape(state_dict, fc1, 0),
                num_hidden_layers=len({k.split('layers.')[1].split('.')[0] for k in state_dict
                                       if k.startswith('text_encoder.') and '.layers.' in k}))
    return dict(unet=unet, vae=vae, text_encoder=text)


def metadata_configs(metadata: dict) -> dict:
    """The configs a file written by :func:`configs_metadata` carries (empty for other files)."""
    return json.loads(metadata[CONFIGS_METADATA_KEY]) if CONFIGS_METADATA_KEY in metadata else {}


def configs_metadata(configs: dict) -> dict:
    """Safetensors metadata carrying the models' diffusers configs (private ``_`` entries dropped)."""
    return {CONFIGS_METADATA_KEY: json.dumps({part: {k: v for k, v in dict(config).items() if not k.startswith('_')}
                                              for part, config in configs.items()})}


def diffusers_configs(state_dict: dict, defaults: dict, metadata: dict, source: str) -> dict:
    """``{'unet', 'vae', 'text_encoder', 'scheduler'}`` configs: defaults, then the file's own, then the shapes."""
    carried, derived = metadata_configs(metadata), configs_from_shapes(state_dict)
    configs = {part: dict(defaults.get(part, {})) | carried.get(part, {}) | derived.get(part, {})
               for part in ('unet', 'vae', 'text_encoder', 'scheduler')}
    _check_divisible(configs, source, bool(carried))
    return configs


def _check_divisible(configs: dict, source: str, carried: bool) -> None:
    unet, vae, text = configs['unet'], configs['vae'], configs['text_encoder']
    problems = [f'text width {text["hidden_size"]} over {text["num_attention_heads"]} heads'] * bool(
        text['hidden_size'] % text['num_attention_heads'])
    problems += [f'{part} width {c} over {cfg["norm_num_groups"]} norm groups'
                 for part, cfg in (('UNet', unet), ('VAE', vae))
                 for c in cfg['block_out_channels'] if c % cfg['norm_num_groups']]
    if problems:
        why = ('its carried configs disagree with its tensors' if carried else
               'it is not of Stable Diffusion 1.x\'s widths and carries no config')
        raise InvalidValueError(f'{source}: {"; ".join(problems)} do not divide: {why}. Convert it to a diffusers '
                                'folder with its own configs where it was made, and give that folder as '
                                'pretrained_model.')
