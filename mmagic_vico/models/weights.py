"""Trained weights as safetensors: only the trainable parameters, plus what they were made for."""
import json
import os
import tempfile
import warnings

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

FORMAT = 'mmagic_vico/1'


def atomic_save_safetensors(path: str, tensors: dict, metadata: dict) -> str:
    """Write a safetensors file through a temporary file and a rename: a reader never sees half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=folder)
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def save_weights_file(path: str, state: dict, metadata: dict) -> str:
    meta = {'format': FORMAT} | {k: json.dumps(v) for k, v in metadata.items()}
    return atomic_save_safetensors(path, state, meta)


def read_safetensors(path: str) -> tuple:
    """``(tensors, metadata)`` of a safetensors file, with a clear error for a missing or broken one."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'weights file {path!r} does not exist; give the .safetensors file written by '
                                'training (work_dirs/<config>/<method>_weights*.safetensors, e.g. vico_weights.safetensors).')
    try:
        with safe_open(path, framework='pt') as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f'weights file {path!r} is not a readable safetensors file (truncated or corrupt?): {err}. '
                         'Export it again from the training checkpoint.') from err


def load_weights_file(path: str, expected: dict, metadata: dict) -> dict:
    """Read trained weights and check them against the model's trainable ``expected`` state and metadata."""
    state, meta = read_safetensors(path)
    saved = {k: json.loads(v) for k, v in meta.items() if k != 'format'}
    for key in sorted(set(saved) & set(metadata) - {'pretrained_model', 'initialize_token'}):
        if saved[key] != json.loads(json.dumps(metadata[key])):
            raise ValueError(f'{path} was made with {key}={saved[key]!r} but this model has {key}={metadata[key]!r}; '
                             f'build the model with {key}={saved[key]!r} (--cfg-options model.{key}=...).')
    if 'pretrained_model' in saved and saved['pretrained_model'] != metadata['pretrained_model']:
        warnings.warn(f'{path} was trained on {saved["pretrained_model"]!r}; the model is built on '
                      f'{metadata["pretrained_model"]!r}. Samples are only faithful on the same base model.')
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f'{path} does not match this model: missing {missing[:4]}{"..." if len(missing) > 4 else ""}, '
                         f'unexpected {unexpected[:4]}{"..." if len(unexpected) > 4 else ""}. Was it trained with '
                         'another layer list or for another method?')
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise ValueError(f'{path}: {key} has shape {tuple(value.shape)} but the model expects '
                             f'{tuple(expected[key].shape)}; it was trained on another base model '
                             f'({saved.get("pretrained_model", "unknown")}).')
    return {k: v.to(expected[k].dtype) for k, v in state.items()}
