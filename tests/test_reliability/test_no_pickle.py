"""Nothing the project runs unpickles a file: a scan of every Python file for loaders that can run code,
plus the explicit allow-list of the one weights-only ``torch.load`` (mmengine checkpoints)."""
import ast
import os

import pytest
import torch

from ..conftest import REPO

SCANNED = ('mmagic_vico', 'tools', 'tests', 'configs')
#: Loaders that unpickle (or unmarshal / construct arbitrary objects): never allowed.
ALWAYS = {'pickle.load', 'pickle.loads', 'pickle.Unpickler', '_pickle.load', '_pickle.loads', '_pickle.Unpickler',
          'cPickle.load', 'cPickle.loads', 'dill.load', 'dill.loads', 'cloudpickle.load', 'cloudpickle.loads',
          'joblib.load', 'pandas.read_pickle', 'shelve.open', 'marshal.load', 'marshal.loads', 'torch.jit.load',
          'yaml.unsafe_load', 'yaml.full_load', 'mmengine.load', 'mmengine.fileio.load', 'mmcv.load'}
SAFE_YAML_LOADERS = ('SafeLoader', 'CSafeLoader', 'BaseLoader')


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


class _Scanner(ast.NodeVisitor):
    def __init__(self):
        self.aliases, self.found = {}, []

    def visit_Import(self, node):
        for alias in node.names:  # 'import a.b' binds a; 'import a.b as c' binds c to a.b
            top = alias.name.split('.')[0]
            self.aliases[alias.asname or top] = alias.name if alias.asname else top

    def visit_ImportFrom(self, node):
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f'{node.module}.{alias.name}'

    def dotted(self, node) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f'{base}.{node.attr}' if base else None
        return None

    def visit_Call(self, node):
        name = self.dotted(node.func) or ''
        name = name.replace('numpy.', 'np.', 1) if name.startswith('numpy.') else name
        problem = None
        if name in ALWAYS:
            problem = 'can run code from the file'
        elif name in ('torch.load', 'torch.serialization.load') and not _is_true(_keyword(node, 'weights_only')):
            problem = 'torch.load without weights_only=True'
        elif name == 'np.load' and _is_true(_keyword(node, 'allow_pickle')):
            problem = 'np.load with allow_pickle=True'
        elif name == 'yaml.load':
            loader = _keyword(node, 'Loader') or (node.args[1] if len(node.args) > 1 else None)
            if not (loader is not None and (self.dotted(loader) or '').endswith(SAFE_YAML_LOADERS)):
                problem = 'yaml.load without a safe Loader'
        if any(kw.arg == 'weights_only' and isinstance(kw.value, ast.Constant) and kw.value.value is False
               for kw in node.keywords):
            problem = 'weights_only=False'
        if problem:
            self.found.append((node.lineno, name, problem))
        self.generic_visit(node)


def violations(source: str) -> list:
    scanner = _Scanner()
    scanner.visit(ast.parse(source))
    return scanner.found


@pytest.mark.parametrize('snippet', [
    'import pickle\npickle.load(open("w.pkl", "rb"))',
    'import pickle as pk\npk.loads(data)',
    'from pickle import Unpickler\nUnpickler(f).load()',
    'import torch\ntorch.load("w.pth")',
    'import torch\ntorch.load("w.pth", weights_only=False)',
    'from torch import load\nload("w.pth", map_location="cpu")',
    'import numpy as np\nnp.load("a.npy", allow_pickle=True)',
    'import yaml\nyaml.load(open("c.yaml"))',
    'import yaml\nyaml.load(text, Loader=yaml.FullLoader)',
    'import joblib\njoblib.load("m.joblib")',
    'import torch\ntorch.jit.load("m.pt")',
    'import mmengine\nmmengine.load("x.pkl")',
])
def test_the_scanner_flags_unsafe_loading(snippet):
    assert violations(snippet), snippet


@pytest.mark.parametrize('snippet', [
    'import torch\ntorch.load("w.pth", weights_only=True)',
    'import numpy as np\nnp.load("a.npy")',
    'import yaml\nyaml.load(text, Loader=yaml.SafeLoader)',
    'import yaml\nyaml.safe_load(text)',
    'import pickle\npickle.dumps(obj)',
    'from safetensors.torch import load_file\nload_file("w.safetensors")',
])
def test_the_scanner_passes_safe_loading(snippet):
    assert not violations(snippet), snippet


def test_no_file_of_the_project_loads_with_pickle():
    found, scanned = [], 0
    for top in SCANNED:
        for folder, _, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                if name.endswith('.py'):
                    path = os.path.join(folder, name)
                    with open(path, encoding='utf-8') as f:
                        found += [(os.path.relpath(path, REPO), *v) for v in violations(f.read())]
                    scanned += 1
    assert scanned > 50  # the scan really walked the project
    assert not found, 'unsafe loading (use safetensors, or torch.load(..., weights_only=True)):\n' + \
        '\n'.join(f'{p}:{line}: {name}: {why}' for p, line, name, why in found)


def test_the_weights_only_allow_list_is_plain_numpy_data():
    """The only classes weights-only loading is allowed beyond torch's own: numpy arrays, dtypes, scalars
    (mmengine checkpoints hold them). Nothing that can call or import (getattr, eval, os.system, ...)."""
    from mmagic_vico.engine.checkpoint import allow_mmengine_checkpoints, mmengine_checkpoint_globals
    allow_mmengine_checkpoints()  # what importing mmagic_vico.engine does
    ours = mmengine_checkpoint_globals()
    allowed = [g for g in torch.serialization.get_safe_globals() if not getattr(g, '__module__', '').startswith('torch')]
    assert allowed and all(any(entry is item for item in ours) for entry in allowed), allowed  # torch's own aside
    for entry in ours:
        assert getattr(entry, '__module__', '').startswith('numpy'), entry
