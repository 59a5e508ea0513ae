"""One live run per folder: ``.lock`` names the process that owns the folder (pid, host, start time,
command) and is ``flock``-ed while it lives. A second run finds it held and stops; a lock left by a
run that crashed (its process gone: the kernel dropped the ``flock``, the pid is not running) is
taken over with a note. Released when the run ends."""
import contextlib
import fcntl
import json
import os
import socket
import sys
import time
import warnings

from .errors import ConflictError

NAME = '.lock'


def process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (tells a live pid from a reused one), or None."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(owner: dict) -> bool:
    """Whether the recorded owner still runs (same host, same pid, same start time)."""
    if owner.get('host') != socket.gethostname():
        return True  # another machine's process: cannot tell, so assume it lives
    pid = owner.get('pid')
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user
    started = process_start(pid)
    return started is None or owner.get('start') in (None, started)


def _describe(owner: dict) -> str:
    return (f'pid {owner.get("pid")} on {owner.get("host")}, started {owner.get("time", "?")}: '
            f'{owner.get("command", "?")[:200]}')


def _read(fd) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        owner = json.loads(os.read(fd, 65536).decode() or '{}')
    except ValueError:
        owner = {}
    return owner if isinstance(owner, dict) else {}


@contextlib.contextmanager
def folder_lock(folder: str, what: str = 'a training run'):
    """Hold ``folder/.lock`` for the duration of the block, or raise :class:`ConflictError` if a live run holds it."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, NAME)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read(fd)
            os.close(fd)
            raise ConflictError(f'{folder} is in use by {what} ({_describe(owner)}). Wait for it to end, or give this '
                                f'run a folder of its own (--work-dir DIR). If no such run exists, delete {path}.')
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino  # not a file another run just released and removed
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    owner = _read(fd)
    if owner and _alive(owner):  # a filesystem without flock (some network mounts): trust the pid
        os.close(fd)
        raise ConflictError(f'{folder} is in use by {what} ({_describe(owner)}). Wait for it to end, or give this run '
                            f'a folder of its own (--work-dir DIR). If no such run exists, delete {path}.')
    if owner:
        warnings.warn(f'{path}: taking over the lock of a run that is no longer running ({_describe(owner)}); it '
                      'crashed or was killed. Its complete checkpoints resume with --resume.')
    me = dict(pid=os.getpid(), host=socket.gethostname(), start=process_start(os.getpid()),
              time=time.strftime('%Y-%m-%d %H:%M:%S'), command=' '.join(sys.argv))
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(me).encode())
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)  # while still holding it: a waiting run then sees a new file (the inode check)
        os.close(fd)
