"""A small JSON beside what the DreamBench sweep made (trained weights, scores) saying what made it: a
rerun skips what the same request made and refuses to reuse what another request made."""
import json
import os

from mmagic_vico.utils.atomic import atomic_write_bytes
from mmagic_vico.utils.errors import ConflictError


def write_record(path: str, made_by: dict, **result) -> dict:
    """``{'made_by': made_by, **result}`` to ``path``, atomically (a killed write leaves no record)."""
    record = dict(made_by=made_by, **result)
    atomic_write_bytes(path, (json.dumps(record, indent=2, sort_keys=True) + '\n').encode())
    return record


def read_record(path: str, made_by: dict, redo: str) -> dict | None:
    """The record at ``path`` if ``made_by`` made it, None if there is none; a :class:`ConflictError` naming
    what differs if another request made it (``redo``: what to delete to make it again)."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            record = json.load(f)
        saved = record['made_by']
    except (ValueError, KeyError, TypeError) as err:
        raise ConflictError(f'{path} is not a record of this sweep ({type(err).__name__}: {err}); delete {redo} '
                            'to make it again.') from err
    wanted = json.loads(json.dumps(made_by))  # tuples as lists, as the file holds them
    if saved != wanted:
        differences = '; '.join(f'{key}: {saved.get(key)!r} there, {wanted.get(key)!r} now'
                                for key in sorted(set(saved) | set(wanted)) if saved.get(key) != wanted.get(key))
        raise ConflictError(f'{path} was made by another request ({differences}). Nothing was changed: run the sweep '
                            f'as it was made, give another --work-dir, delete {redo} to make it again, or pass '
                            '--overwrite to redo every job that other settings made.')
    return record
