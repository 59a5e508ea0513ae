"""User mistakes, reported once at the entry of every tool (as pip's ``base_command`` and click's
``ClickException`` do).

Code raises a :class:`UserError` where a bad value enters, with the value and the fix in the message.
Every tool's ``main`` runs through :func:`run_tool`, which prints that message without a traceback
and exits with status 1; ``--debug`` (or ``MMAGIC_VICO_DEBUG=1``) shows the traceback, and anything
that is not a user error (a bug) always shows it. Each subclass is also the builtin error of its kind,
so ``except ValueError`` / ``except FileNotFoundError`` keep working.
"""
import errno
import os
import sys

DEBUG_ENV = 'MMAGIC_VICO_DEBUG'
DEBUG_HINT = f'(for the traceback: run again with --debug, or set {DEBUG_ENV}=1)'


class UserError(Exception):
    """A mistake in what the user gave (a flag, a config value, a file, a folder) or in the state of a
    folder; the message names the input, its value and what to do."""
    exit_code = 1


class InvalidValueError(UserError, ValueError):
    """A value of the wrong kind or out of range (a flag, a config key, a file's content)."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class ConflictError(UserError, RuntimeError):
    """A folder already holds something this run must not overwrite or reuse (another run's exports,
    a live run's lock, cached images made with other settings)."""


class TrainingStoppedError(UserError, RuntimeError):
    """Training stopped on purpose (a non-finite loss), with what was kept and what to change."""


class DiskFullError(UserError, OSError):
    """The disk filled up while writing; the message says what was kept and where to free space."""


def _cause(err):
    return err.__cause__ if err.__cause__ is not None else (None if err.__suppress_context__ else err.__context__)


def user_error_in(err: BaseException):
    """The user error behind ``err``: the deepest one in its chain of causes (mmengine's registry re-raises
    a build error as a new error of the same type, prefixed with the class name: the original is clearer)."""
    found, seen = None, set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, UserError):
            found = err
        err = _cause(err)
    return found


def environment_message(err: BaseException) -> str | None:
    """A message for conditions of the machine rather than of the code: a full disk, no memory left."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f'{err} (the disk is full). Free space (df -h; e.g. delete old iter_*.pth checkpoints) or write '
                'elsewhere (--work-dir / --out-dir DIR), then run again.')
    if isinstance(err, MemoryError) or type(err).__name__ == 'OutOfMemoryError':
        return (f'out of memory ({str(err).splitlines()[0] if str(err) else type(err).__name__}). Ask for less at '
                'once: a smaller batch (--cfg-options train_dataloader.batch_size=1) or size, fewer --num-images; '
                'or hold the frozen model in half precision (model.frozen_dtype=bf16), recompute activations '
                '(model.gradient_checkpointing=True) or train with --amp.')
    return None


def debug_requested(argv) -> bool:
    return '--debug' in (argv or ()) or os.environ.get(DEBUG_ENV, '') not in ('', '0', 'false', 'False')


def run_tool(main, argv=None) -> None:
    """Run a tool's ``main(argv)``: a user error (or a full disk, no memory, Ctrl-C) ends it with one clean
    message on stderr and a non-zero exit status; other errors, and every error under ``--debug``, keep
    their traceback. A non-zero int that ``main`` returns is the exit status (a gate not reached)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = debug_requested(argv)
    try:
        status = main(argv)
    except KeyboardInterrupt:
        if debug:
            raise
        print('\ninterrupted (Ctrl-C); files already written are complete (every file is written atomically).',
              file=sys.stderr)
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - the one place where errors become messages
        user = user_error_in(err)
        message = str(user) if user is not None else environment_message(err)
        if message is None or debug:
            raise
        print(f'error: {message}\n{DEBUG_HINT}', file=sys.stderr)
        sys.exit(getattr(user, 'exit_code', 1))
    if isinstance(status, int) and not isinstance(status, bool) and status:
        sys.exit(status)
