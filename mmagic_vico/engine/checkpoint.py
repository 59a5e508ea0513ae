"""Checkpoints that load under torch >= 2.6, whose ``torch.load`` is weights-only by default.

An mmengine checkpoint keeps its message hub as ``HistoryBuffer`` objects, which pickle numpy arrays
and bound methods (``getattr``, which can reach anything). Rather than switching weights-only
loading off, :func:`encode_message_hub` stores those buffers as plain tensors when a checkpoint is
saved and :func:`decode_message_hub` rebuilds them on resume; the numpy classes a checkpoint may still
hold are allowed explicitly by :func:`allow_mmengine_checkpoints`.
"""
import numpy as np
import torch
from mmengine.logging import HistoryBuffer

try:  # numpy >= 2
    from numpy._core import multiarray
except ImportError:  # pragma: no cover
    from numpy.core import multiarray

_BUFFER = '__history_buffer__'


def mmengine_checkpoint_globals() -> list:
    """Classes and rebuild functions of plain numpy data: none of them can run code."""
    dtypes = [type(np.dtype(t)) for t in ('float64', 'float32', 'float16', 'int64', 'int32', 'uint8', 'bool')]
    return [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar, *dtypes]


def allow_mmengine_checkpoints() -> None:
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())


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
