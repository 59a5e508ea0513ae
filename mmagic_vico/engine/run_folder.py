"""A training run's folder (the work dir): whose exports it holds, and where ``--resume`` continues.

The run's record (method, concept, placeholder, the resolved config, the number of processes) is kept
in the folder's manifest (``utils/manifest.py``). A new run into a folder that holds another run's
exports stops before any work; ``--resume`` continues from the folder's own newest complete
checkpoint, wherever the folder was moved or copied.
"""
import glob
import os
import re
import shutil
import warnings
import zipfile

from mmagic_vico.utils.atomic import atomic_write_bytes
from mmagic_vico.utils.errors import ConflictError
from mmagic_vico.utils.manifest import differences, plain, read_manifest

#: What a training run writes into its folder (logs aside).
EXPORTS = ('iter_*.pth', 'last_checkpoint', '*_weights*.safetensors', 'learned_embeds.safetensors',
           'pytorch_lora_weights.safetensors', 'diffusers', 'vis')
#: Config keys that do not change what a run computes (where it writes, how it logs, how it starts).
NOT_COMPARED = ('config', 'work_dir', 'resume', 'load_from', 'launcher', 'experiment_name', 'log_level',
                'log_processor', 'visualizer', 'vis_backends', 'env_cfg', 'model_wrapper_cfg', 'custom_imports',
                'gpu_ids', 'default_hooks.logger', 'default_hooks.timer')
IDENTITY = ('method', 'concept', 'placeholder')
FIX = ('Give this run a folder of its own (--work-dir DIR), continue the run that is there with --resume, or '
       'replace its exports with --overwrite.')


def run_record(cfg, config_path: str) -> dict:
    """What makes a run this run: method, concept, placeholder, the resolved config, the number of processes."""
    dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    concept = dataset.get('concept_dir')
    settings = {k: v for k, v in cfg.to_dict().items() if k not in NOT_COMPARED}
    return plain(dict(method=cfg.model.get('type'), concept=os.path.basename(os.path.normpath(concept)) if concept
                      else None, placeholder=cfg.model.get('placeholder', dataset.get('placeholder')),
                      config=config_path, processes=int(os.environ.get('WORLD_SIZE', 1)), settings=settings))


def existing_exports(work_dir: str) -> list:
    found = set()
    for pattern in EXPORTS:
        found.update(os.path.basename(p) for p in glob.glob(os.path.join(glob.escape(work_dir), pattern)))
    return sorted(found)


def _remove(work_dir: str, names: list) -> None:
    for name in names:
        path = os.path.join(work_dir, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


def _listed(changes: list) -> str:
    """``key: there -> here`` lines as one phrase (the ``settings.`` prefix dropped: they are config keys)."""
    shown = [c.removeprefix('settings.') for c in changes[:5]]
    return '; '.join(shown) + ('; ...' if len(changes) > 5 else '') + ' (that run -> this one)'


def check_run_folder(work_dir: str, record: dict, resume: bool = False, overwrite: bool = False) -> None:
    """Stop before any work if ``work_dir`` holds the exports of another run (another method, concept,
    placeholder, setting or number of processes), unless the run is resumed (same method, concept and
    placeholder) or ``overwrite`` is set (the previous exports are then removed, named in a warning)."""
    exports = existing_exports(work_dir)
    if not exports:
        return
    shown = ', '.join(exports[:4]) + (', ...' if len(exports) > 4 else '')
    if overwrite:
        _remove(work_dir, exports)
        warnings.warn(f'--overwrite: removed the previous exports of {work_dir} ({shown}).')
        return
    stored = read_manifest(work_dir)
    if stored is None:
        if resume:
            return
        raise ConflictError(f'{work_dir} already holds the exports of a run ({shown}) whose settings are not '
                            f'recorded, and this run would replace them. {FIX}')
    other = differences({k: stored.get(k) for k in IDENTITY}, {k: record.get(k) for k in IDENTITY})
    if other:
        raise ConflictError(f'{work_dir} holds the exports of another run ({shown}), which differs from this one in '
                            f'{_listed(other)}: training here would replace them. Give this run a folder of its own '
                            '(--work-dir DIR), or replace that run\'s exports with --overwrite.')
    changed = differences(stored, record, ignore=IDENTITY + ('config',) + tuple(f'settings.{k}' for k in NOT_COMPARED))
    if resume:
        if changed:
            warnings.warn(f'resuming the run in {work_dir} with other settings than it started with: '
                          f'{_listed(changed)}.')
        return
    if changed:
        raise ConflictError(f'{work_dir} holds the exports of a run with other settings ({shown}), which differs '
                            f'from this one in {_listed(changed)}: training here from the start would replace them. '
                            f'{FIX}')
    warnings.warn(f'{work_dir} already holds the exports of this run ({shown}): training from the start writes '
                  'them again (--resume continues from the latest checkpoint instead).')


def checkpoint_problem(path: str) -> str | None:
    """Why ``path`` is not a whole torch checkpoint (a zip archive with its pickle), or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            if not any(n.endswith('data.pkl') for n in archive.namelist()):
                return 'no data.pkl in the archive'
    except (zipfile.BadZipFile, OSError) as err:
        return f'{type(err).__name__}: {err}'
    return None


def resume_point(work_dir: str, repair: bool = True) -> str | None:
    """The newest complete ``iter_N.pth`` of ``work_dir`` (a truncated newer one is passed over with a
    warning); ``last_checkpoint`` is rewritten to name it when it is missing, empty, relative or names a
    file elsewhere (a moved or copied folder). None if the folder has no complete checkpoint."""
    numbered = []
    for path in glob.glob(os.path.join(glob.escape(work_dir), 'iter_*.pth')):
        found = re.fullmatch(r'iter_(\d+)\.pth', os.path.basename(path))
        if found:
            numbered.append((int(found.group(1)), os.path.abspath(path)))
    chosen, skipped = None, []
    for _, path in sorted(numbered, reverse=True):
        problem = checkpoint_problem(path)
        if problem is None:
            chosen = path
            break
        skipped.append(f'{os.path.basename(path)} ({problem})')
    if skipped:
        warnings.warn(f'{work_dir}: skipping incomplete checkpoint(s) {", ".join(skipped)}; resuming from '
                      f'{os.path.basename(chosen) if chosen else "the start"} instead.')
    if chosen is None:
        return None
    pointer = os.path.join(work_dir, 'last_checkpoint')
    try:
        with open(pointer) as f:
            named = f.read().strip()
    except OSError:
        named = None
    if named != chosen and repair:
        if named and os.path.abspath(named) != chosen:
            warnings.warn(f'{pointer} names {named!r}; resuming from this folder\'s {os.path.basename(chosen)} '
                          f'({chosen}), and last_checkpoint now names it.')
        atomic_write_bytes(pointer, chosen.encode())
    return chosen
