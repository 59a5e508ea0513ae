"""Reading other tools' PyTorch files (``.pt``, ``.pth``, ``.ckpt``) without running code from them.

torch's weights-only unpickler builds tensors and plain containers only. One more class is allowed,
explicitly: ``torch.nn.ParameterDict``, which textual inversion's and the ViCo authors' ``embeddings.pt``
pickle. It is rebuilt as :class:`PickledParameterDict`, an inert record of its attributes, never as the
module. Anything else (a Lightning callback, a class of the writer's code, a reduce to ``os.system``)
is refused with a message naming it.
"""
import os
import pickle
import zipfile

import torch

from mmagic_vico.utils.errors import InvalidValueError, MissingFileError

#: The extensions of the PyTorch pickle files read here (safetensors files are read with safetensors).
TORCH_EXTENSIONS = ('.pt', '.pth', '.ckpt', '.bin')


class PickledParameterDict:
    """An ``nn.ParameterDict`` as a pickle holds it: its attributes, set by the unpickler, and no code."""

    def to_dict(self) -> dict:
        return {name: torch.Tensor(p).detach() for name, p in (self.__dict__.get('_parameters') or {}).items()}


ALLOWED_GLOBALS = [(PickledParameterDict, 'torch.nn.modules.container.ParameterDict')]


def refused_global(err: Exception) -> str:
    """The line of torch's weights-only error that says what was refused (not its advice to switch it off)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return next((line for line in lines if 'GLOBAL' in line or 'Unsupported' in line), lines[-1] if lines else '')


def plain(value):
    """Containers and tensors only: a :class:`PickledParameterDict` becomes a dict of tensors."""
    if isinstance(value, PickledParameterDict):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def load_torch_file(path: str, what: str = 'weights file'):
    """The content of a PyTorch pickle file, read weights-only with :data:`ALLOWED_GLOBALS`."""
    if not os.path.isfile(path):
        raise MissingFileError(f'{what} {path!r} does not exist; give the path of an existing file.')
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            return plain(torch.load(path, map_location='cpu', weights_only=True, mmap=zipfile.is_zipfile(path)))
    except pickle.UnpicklingError as err:
        raise InvalidValueError(f'{what} {path!r} holds Python objects beyond tensors and plain containers '
                                f'({refused_global(err)}), so it is not loaded: unpickling them could run any code. '
                                'Where you trust the file, save its tensors alone (safetensors.torch.save_file('
                                'state_dict, ...)) and give that file instead.') from err
    except (RuntimeError, EOFError, OSError) as err:
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise InvalidValueError(f'{what} {path!r} is truncated or not a PyTorch file ({reason}); download or export '
                                'it again.') from err
