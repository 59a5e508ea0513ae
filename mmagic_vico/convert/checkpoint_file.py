"""Reading a single-file Stable Diffusion 1.x checkpoint: ``.safetensors``, or a ``.ckpt`` read weights-only."""
import os

from safetensors import SafetensorError, safe_open

from mmagic_vico.utils.errors import InvalidValueError, MissingFileError
from .compvis import COMPVIS_PREFIXES
from .safe_load import TORCH_EXTENSIONS, load_torch_file

#: The files ``pretrained_model`` may name instead of a diffusers folder.
CHECKPOINT_EXTENSIONS = ('.safetensors', '.ckpt')


def is_checkpoint_file(path) -> bool:
    return isinstance(path, str) and path.lower().endswith(CHECKPOINT_EXTENSIONS)


def read_tensors(path: str, what: str) -> tuple:
    """``(tensors, metadata)`` of a safetensors file or (weights-only) PyTorch file; a ``state_dict`` entry
    (Lightning, mmengine) is unwrapped, non-tensor entries (``global_step``) are dropped."""
    if not os.path.isfile(path):
        raise MissingFileError(f'{what} {path!r} does not exist; give the path of an existing file.')
    if path.lower().endswith(TORCH_EXTENSIONS):
        content = load_torch_file(path, what)
        while isinstance(content, dict) and isinstance(content.get('state_dict'), dict):
            content = content['state_dict']
        if not isinstance(content, dict):
            raise InvalidValueError(f'{what} {path!r} holds a {type(content).__name__}, not a dict of tensors.')
        return {k: v for k, v in content.items() if hasattr(v, 'shape')}, {}
    try:
        with safe_open(path, framework='pt') as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as err:
        raise InvalidValueError(f'{what} {path!r} is not a readable safetensors file (truncated or corrupt?): {err}; '
                                'download or export it again.') from err


def read_sd_checkpoint(path: str) -> tuple:
    """``(CompVis state dict, metadata)`` of a single-file SD 1.x checkpoint, checked to hold its three models."""
    what = 'pretrained_model'
    state, metadata = read_tensors(path, what)
    missing = [f'{part} ({prefix}*)' for part, prefix in COMPVIS_PREFIXES.items()
               if not any(k.startswith(prefix) for k in state)]
    if missing:
        shown = ', '.join(sorted(state)[:3])
        raise InvalidValueError(f'{what}={path!r} is not a Stable Diffusion 1.x single-file checkpoint in the '
                                f'CompVis layout: it has no {", ".join(missing)} (its keys: {shown}...). Give an SD '
                                '1.x .safetensors / .ckpt with UNet, VAE and CLIP text encoder (SD 2.x and SDXL files '
                                'are not SD 1.x), or a folder in the diffusers layout.')
    return state, metadata
