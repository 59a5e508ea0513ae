"""A small JSON beside what the DreamBench sweep made (trained weights, scores) saying what made it: a
rerun skips what the same request made and refuses to reuse what another request made."""
import hashlib
import json
import os

import torch

from mmagic_vico.utils.atomic import atomic_write_bytes


def weights_sha256(path: str) -> str:
    """SHA-256 of a safetensors file's tensors (names, dtypes, shapes, values) and metadata, in sorted
    order: the same weights give the same hash whatever order the writer laid them out in (the
    metadata's order changes from process to process)."""
    from safetensors import safe_open
    digest = hashlib.sha256()
    with safe_open(path, 'pt') as f:
        digest.update(json.dumps(f.metadata() or {}, sort_keys=True).encode())
        for name in sorted(f.keys()):
            tensor = f.get_tensor(name).contiguous()
            digest.update(f'{name}|{tensor.dtype}|{tuple(tensor.shape)}|'.encode())
            digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def write_record(path: str, made_by: dict, **result) -> dict:
    """``{'made_by': made_by, **result}`` to ``path``, atomically (a killed write leaves no record)."""
    record = dict(made_by=made_by, **result)
    atomic_write_bytes(path, (json.dumps(record, indent=2, sort_keys=True) + '\n').encode())
    return record


def read_record(path: str, made_by: dict, redo: str) -> dict | None:
    """The record at ``path`` if ``made_by`` made it, None if there is none; a ``ValueError`` naming what
    differs if another request made it (``redo``: what to delete to make it again)."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            record = json.load(f)
        saved = record['made_by']
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f'{path} is not a record of this sweep ({type(err).__name__}: {err}); delete {redo} '
                         'to make it again.') from err
    wanted = json.loads(json.dumps(made_by))  # tuples as lists, as the file holds them
    if saved != wanted:
        differences = '; '.join(f'{key}: {saved.get(key)!r} there, {wanted.get(key)!r} now'
                                for key in sorted(set(saved) | set(wanted)) if saved.get(key) != wanted.get(key))
        raise ValueError(f'{path} was made by another request ({differences}). Nothing was changed: run the sweep '
                         f'as it was made, give another --work-dir, or delete {redo} to make it again.')
    return record
