"""Caches that know what made them: a small JSON manifest (``.manifest.json``) inside a cache folder
records what made its files (config, weights hash, sampler settings). Files are reused only under the
same record; a cached image that no longer reads (truncated, corrupt) is made again, named in a warning.

Used for evaluation images, DreamBooth's class images and a training run's work dir.
"""
import hashlib
import json
import os
import warnings

from .atomic import atomic_write_bytes
from .errors import ConflictError
from .image import open_image

NAME = '.manifest.json'
_hashes = {}  # (path, size, mtime) -> sha256: a file is hashed once per process


def _tensors_sha256(path: str) -> str:
    import torch
    from safetensors import safe_open
    digest = hashlib.sha256()
    with safe_open(path, 'pt') as f:
        digest.update(json.dumps(f.metadata() or {}, sort_keys=True).encode())
        for name in sorted(f.keys()):
            tensor = f.get_tensor(name).contiguous()
            digest.update(f'{name}|{tensor.dtype}|{tuple(tensor.shape)}|'.encode())
            digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _bytes_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(path: str) -> str:
    """SHA-256 of a weights file's content: of a safetensors file, its tensors (names, dtypes, shapes, values)
    and metadata in sorted order, so that the same weights hash alike whatever order the writer laid them
    out in (the metadata's order changes from process to process); of any other file, its bytes. Hashed
    once per process while the file is unchanged."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _hashes:
        try:
            _hashes[key] = _tensors_sha256(path)
        except Exception:  # not a readable safetensors file: loading it will say why (a pickle is never opened)
            _hashes[key] = _bytes_sha256(path)
    return _hashes[key]


def _paths_resolved(value):
    if isinstance(value, str) and os.sep in value and os.path.exists(value):
        return os.path.realpath(value)  # 'configs/vico/../../data/tiny_sd15' and 'data/tiny_sd15' are one folder
    if isinstance(value, dict):
        return {k: _paths_resolved(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_paths_resolved(v) for v in value]
    return value


def plain(value):
    """``value`` as JSON data (mmengine ConfigDicts, tuples and paths included); a string naming an existing
    file or folder becomes its real path, so that two spellings of one folder compare equal."""
    return _paths_resolved(json.loads(json.dumps(value, default=str)))


def read_manifest(folder: str) -> dict | None:
    """The record of ``folder``, or None if it has none (or an unreadable one)."""
    try:
        with open(os.path.join(folder, NAME), encoding='utf-8') as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_manifest(folder: str, record: dict) -> None:
    atomic_write_bytes(os.path.join(folder, NAME), json.dumps(plain(record), indent=1, sort_keys=True).encode())


def flatten(record, prefix: str = '') -> dict:
    """``{'a': {'b': 1}}`` -> ``{'a.b': 1}`` (lists stay values)."""
    if not isinstance(record, dict):
        return {prefix: record}
    flat = {}
    for key, value in record.items():
        flat.update(flatten(value, f'{prefix}.{key}' if prefix else str(key)))
    return flat


def differences(old: dict, new: dict, ignore=()) -> list:
    """``'key: old -> new'`` for every dotted key whose value differs (keys under ``ignore`` left out)."""
    a, b = flatten(plain(old)), flatten(plain(new))
    keys = [k for k in set(a) | set(b) if not any(k == i or k.startswith(i + '.') for i in ignore)]
    keys.sort(key=lambda k: (k.rsplit('.', 1)[-1] != 'type', k.count('.'), k))  # what differs most, first
    def short(v):
        if isinstance(v, str) and len(v) > 40:
            v = v[:16] + '...'  # a hash or a long path: its start tells them apart
        return text if len(text := json.dumps(v)) <= 60 else text[:57] + '...'
    return [f'{k}: {short(a.get(k))} -> {short(b.get(k))}' for k in keys if a.get(k) != b.get(k)]


def cached_files(folder: str) -> list:
    """Names of the files a cache folder holds (hidden ones, such as the manifest, left out)."""
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if not n.startswith('.'))


def claim(folder: str, record: dict, what: str, fix: str, write: bool = True) -> None:
    """Reuse the files of ``folder`` only if they were made under ``record``: an empty folder is claimed
    (its manifest written, unless ``write`` is False); one whose manifest differs, or that holds files
    but no manifest, raises :class:`ConflictError` saying what differs and ``fix``."""
    files, stored = cached_files(folder), read_manifest(folder)
    if files and stored is None:
        raise ConflictError(f'{folder} holds {len(files)} file(s) '
                            f'({", ".join(files[:3])}{", ..." if len(files) > 3 else ""}) '
                            f'but no {NAME} saying what made them, so they may be {what} of other settings. {fix}')
    if files and stored is not None:
        changed = differences(stored, record)
        if changed:
            raise ConflictError(f'{what} in {folder} were made with other settings ({"; ".join(changed[:4])}'
                                f'{"; ..." if len(changed) > 4 else ""}), so reusing them would mix two runs. {fix}')
    if write and stored != plain(record):
        write_manifest(folder, record)


def readable_image(path: str) -> bool:
    """Whether an image file exists and reads whole (nothing is changed)."""
    try:
        open_image(path)
        return True
    except (ValueError, FileNotFoundError):
        return False


def reusable_image(path: str) -> bool:
    """Whether a cached image exists and reads whole; an unreadable one is deleted (so that it is made
    again) with a warning naming it."""
    if not os.path.exists(path):
        return False
    try:
        open_image(path)
        return True
    except ValueError as err:
        reason = err.__cause__ or err
        warnings.warn(f'cached image {path} is truncated or corrupt ({type(reason).__name__}: {reason}); '
                      'making it again.')
        os.remove(path)
        return False
