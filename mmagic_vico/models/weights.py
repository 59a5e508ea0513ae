"""Trained weights as safetensors: only the trainable parameters, plus what they were made for.

Every file is written atomically (``mmagic_vico.utils.atomic``): a kill or a full disk leaves the
previous file whole, never half of a new one. Nothing here unpickles: a pickle (``torch.save``) file
is refused with a message.
"""
import json
import os
import warnings

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from mmagic_vico.utils.atomic import atomic_write
from mmagic_vico.utils.errors import InvalidValueError, MissingFileError

FORMAT = 'mmagic_vico/1'
#: The first bytes of ``torch.save`` files (zip archive, or a bare pickle of protocol 2-5).
PICKLE_MAGIC = (b'PK\x03\x04', b'\x80\x02', b'\x80\x03', b'\x80\x04', b'\x80\x05')


def atomic_save_safetensors(path: str, tensors: dict, metadata: dict) -> str:
    """Write a safetensors file atomically: a reader never sees half a file."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def save_weights_file(path: str, state: dict, metadata: dict) -> str:
    meta = {'format': FORMAT} | {k: json.dumps(v) for k, v in metadata.items()}
    return atomic_save_safetensors(path, state, meta)


def refuse_pickle(path: str, what: str = 'weights file') -> None:
    """A ``torch.save`` / pickle file is never opened here: unpickling can run any code it holds."""
    with open(path, 'rb') as f:
        head = f.read(9)
    # a safetensors file starts with its header's length (8 bytes) and the header's JSON '{'; a length
    # whose low bytes look like a pickle's magic must not be taken for one
    if head.startswith(PICKLE_MAGIC) and head[8:9] != b'{':
        raise InvalidValueError(f'{what} {path!r} is a PyTorch pickle (torch.save / .pth / .bin), not safetensors. It '
                                'is not opened, because loading a pickle can run any code it holds. Give the '
                                '.safetensors file written by training (<method>_weights.safetensors in the work dir); '
                                'a training checkpoint iter_N.pth is resumed with tools/train.py CONFIG --resume '
                                'iter_N.pth; weights of other tools (the ViCo authors\' .pt, mmagic\'s .pth) convert '
                                'with tools/convert_weights.py.')


def read_safetensors(path: str, what: str = 'weights file') -> tuple:
    """``(tensors, metadata)`` of a safetensors file, with a clear error for a missing or broken one."""
    if not os.path.isfile(path):
        raise MissingFileError(f'{what} {path!r} does not exist; give the .safetensors file written by '
                               'training (work_dirs/<config>/<concept>/<method>_weights*.safetensors, e.g. '
                               'vico_weights.safetensors).')
    refuse_pickle(path, what)
    try:
        with safe_open(path, framework='pt') as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as err:
        raise InvalidValueError(f'{what} {path!r} is not a readable safetensors file (truncated or corrupt?): {err}. '
                                'Export it again from the training checkpoint.') from err


def non_finite(state: dict) -> list:
    """Names of the tensors holding NaN or infinity."""
    return [k for k, v in state.items() if v.is_floating_point() and not bool(v.isfinite().all())]


def read_weights_file(path: str) -> tuple:
    """``(state, metadata)`` of a trained-weights file of this project."""
    state, meta = read_safetensors(path)
    if meta.get('format') != FORMAT:
        raise InvalidValueError(f'{path} is not a trained-weights file of this project (its metadata has no format '
                                f'{FORMAT!r}; keys {sorted(state)[:3]}). learned_embeds.safetensors is for diffusers\' '
                                'load_textual_inversion: give the <method>_weights.safetensors of the same work dir '
                                '(e.g. vico_weights.safetensors).')
    return state, {k: json.loads(v) for k, v in meta.items() if k != 'format'}


def check_weights(path: str, state: dict, saved: dict, expected: dict, metadata: dict) -> dict:
    """Check read weights (``saved``: the metadata they were made with) against the model's trainable
    ``expected`` state and ``metadata``; returns them in the model's dtypes."""
    for key in sorted(set(saved) & set(metadata) - {'pretrained_model', 'initialize_token'}):
        if saved[key] != json.loads(json.dumps(metadata[key])):
            fix = (f'use the config of {saved[key]} (e.g. configs/<method>/<method>.py)' if key == 'method' else
                   f'build the model with {key}={saved[key]!r} (--cfg-options model.{key}=...)')
            raise InvalidValueError(f'{path} was made with {key}={saved[key]!r} but this model has '
                                    f'{key}={metadata[key]!r}; {fix}.')
    if 'pretrained_model' in saved and saved['pretrained_model'] != metadata['pretrained_model']:
        warnings.warn(f'{path} was trained on {saved["pretrained_model"]!r}; the model is built on '
                      f'{metadata["pretrained_model"]!r}. Samples are only faithful on the same base model.')
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise InvalidValueError(f'{path} does not match this model: missing '
                                f'{missing[:4]}{"..." if len(missing) > 4 else ""}, unexpected '
                                f'{unexpected[:4]}{"..." if len(unexpected) > 4 else ""}. Was it trained with another '
                                'layer list or for another method?')
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise InvalidValueError(f'{path}: {key} has shape {tuple(value.shape)} but the model expects '
                                    f'{tuple(expected[key].shape)}; it was trained on another base model '
                                    f'({saved.get("pretrained_model", "unknown")}).')
    bad = non_finite(state)
    if bad:
        raise InvalidValueError(f'{path} holds NaN or infinite values in {bad[:3]}: the training that wrote it '
                                'diverged. Use an earlier export (<method>_weights_iter_N.safetensors of the work dir) '
                                'and train again with a lower learning rate, in fp32.')
    return {k: v.to(expected[k].dtype) for k, v in state.items()}
