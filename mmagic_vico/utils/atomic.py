"""Crash-safe writes: a temporary file (or folder) beside the target, flushed to disk, renamed over it.

A kill, a crash or a full disk in the middle of a write leaves the previous file whole, never half of
a new one, and no temporary file behind; a full disk is reported with where and what to do.
"""
import contextlib
import errno
import os
import shutil
import tempfile

from .errors import DiskFullError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full_error(err: OSError, path: str) -> DiskFullError:
    """A disk-full error that says where, that nothing was overwritten, and what to do."""
    folder = os.path.dirname(os.path.abspath(path))
    return DiskFullError(err.errno, f'No space left on device (the disk is full) while writing {path}. Nothing '
                         f'was overwritten: the previous {os.path.basename(path)}, if any, is intact. Free space on '
                         f'the disk of {folder} (df -h {folder}; e.g. delete old iter_*.pth checkpoints) or write '
                         'elsewhere (--work-dir DIR), then run again (tools/train.py --resume continues a training '
                         'run).')


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def reporting_disk_full(path: str):
    """Turn a disk-full error inside the block into :func:`disk_full_error`."""
    try:
        yield
    except OSError as err:
        if err.errno in DISK_FULL:
            raise disk_full_error(err, path) from err
        raise


def atomic_write(path: str, write) -> str:
    """``write(tmp)`` a temporary file beside ``path``, flush it to disk, rename it over ``path``.
    On any error the temporary file is removed and ``path`` is untouched."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=folder)
    os.close(fd)
    with reporting_disk_full(path):
        try:
            write(tmp)
            os.chmod(tmp, 0o666 & ~_umask())  # the permissions of a plainly written file, not mkstemp's 0600
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
    return path


def atomic_write_bytes(path: str, data: bytes) -> str:
    def write(tmp):
        with open(tmp, 'wb') as f:
            f.write(data)
    return atomic_write(path, write)


def atomic_copy(source: str, path: str) -> str:
    return atomic_write(path, lambda tmp: shutil.copyfile(source, tmp))


@contextlib.contextmanager
def atomic_folder(path: str):
    """Yield a temporary folder beside ``path`` to fill; when it is complete, the previous ``path`` is
    moved aside, the new one renamed into place and the old one removed. On an error the temporary
    folder is removed and ``path`` stays as it was."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=parent)
    os.chmod(tmp, 0o777 & ~_umask())
    old = tmp[:-len('.tmp')] + '.old'
    with reporting_disk_full(path):
        try:
            yield tmp
            if os.path.exists(path):
                os.replace(path, old)
            os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)


def atomic_save_image(path: str, image, **params) -> str:
    """A PIL image to ``path`` (format from its extension; ``params`` go to ``Image.save``), atomically."""
    fmt = os.path.splitext(path)[1].lstrip('.').upper().replace('JPG', 'JPEG') or 'PNG'
    return atomic_write(path, lambda tmp: image.save(tmp, format=fmt, **params))
