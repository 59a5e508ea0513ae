"""Checkpoints that load under torch >= 2.6, whose ``torch.load`` is weights-only by default.

An mmengine checkpoint keeps its message hub as ``HistoryBuffer`` objects, which pickle numpy arrays
and bound methods (``getattr``, which can reach anything). Rather than switching weights-only
loading off, :func:`encode_message_hub` stores those buffers as plain tensors when a checkpoint is
saved and :func:`decode_message_hub` rebuilds them on resume; the numpy classes a checkpoint may still
hold are allowed explicitly by :func:`allow_mmengine_checkpoints`.

:func:`allow_mmengine_checkpoints` also makes mmengine's local checkpoint I/O safe: checkpoints are
read by :func:`load_from_local_weights_only` (``torch.load(weights_only=True)`` with that allow-list only,
and an error naming the file and the fix for a missing, truncated or code-carrying one), and written
atomically by :class:`AtomicLocalBackend` (a kill while saving never leaves half a checkpoint).
"""
import os
import pickle

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

from mmagic_vico.convert.safe_load import refused_global
from mmagic_vico.utils.atomic import atomic_write_bytes
from mmagic_vico.utils.errors import InvalidValueError, MissingFileError

try:  # numpy >= 2
    from numpy._core import multiarray
except ImportError:  # pragma: no cover
    from numpy.core import multiarray

_BUFFER = '__history_buffer__'


def mmengine_checkpoint_globals() -> list:
    """Classes and rebuild functions of plain numpy data: none of them can run code."""
    dtypes = [type(np.dtype(t)) for t in ('float64', 'float32', 'float16', 'int64', 'int32', 'uint8', 'bool')]
    return [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar, *dtypes]


def load_from_local_weights_only(filename: str, map_location=None) -> dict:
    """mmengine's local checkpoint loader, weights-only with an explicit allow-list and clear errors."""
    path = os.path.expanduser(filename)
    if not os.path.isfile(path):
        raise MissingFileError(f'checkpoint {filename!r} does not exist; give an iter_N.pth of the work dir, or '
                               '--resume alone to take the latest checkpoint of --work-dir.')
    try:
        with torch.serialization.safe_globals(mmengine_checkpoint_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise InvalidValueError(f'checkpoint {filename!r} holds Python objects beyond tensors and plain data, and is '
                                'not loaded: unpickling them could run code. Only checkpoints written by '
                                'tools/train.py load; for weights, share the .safetensors export instead. '
                                f'({refused_global(err)})') from err
    except (RuntimeError, EOFError, OSError) as err:
        reason = str(err).split('. ')[0]
        raise InvalidValueError(f'checkpoint {filename!r} is truncated or not a PyTorch checkpoint ({reason}); resume '
                                'from an earlier iter_N.pth of the work dir (or from --resume alone, which takes the '
                                'last complete one).') from err


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, whose ``put`` (checkpoints) writes a temporary file and renames it."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write_bytes(str(filepath), obj)


def allow_mmengine_checkpoints() -> None:
    """The allow-list for weights-only loading, the safe local checkpoint loader and atomic checkpoint writes."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_weights_only, force=True)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def encode_message_hub(checkpoint: dict) -> None:
    """In place: history buffers -> ``{_BUFFER: True, log, count, max_length}``; numpy -> python/tensors."""
    hub = checkpoint.get('message_hub')
    if not isinstance(hub, dict):
        return
    scalars = hub.get('log_scalars', {})
    for key, buf in list(scalars.items()):
        if isinstance(buf, HistoryBuffer):
            log, count = buf.data
            scalars[key] = {_BUFFER: True, 'log': torch.from_numpy(np.asarray(log, dtype=np.float64)),
                            'count': torch.from_numpy(np.asarray(count, dtype=np.float64)),
                            'max_length': int(buf.max_length)}
    hub['runtime_info'] = _plain(hub.get('runtime_info', {}))


def decode_message_hub(checkpoint: dict) -> None:
    """Inverse of :func:`encode_message_hub`, in place."""
    scalars = (checkpoint.get('message_hub') or {}).get('log_scalars', {})
    for key, value in list(scalars.items()):
        if isinstance(value, dict) and value.get(_BUFFER):
            scalars[key] = HistoryBuffer(value['log'].tolist(), value['count'].tolist(), value['max_length'])
