"""Config helpers shared by the tools."""
import difflib
import glob
import inspect
import math
import os

from mmengine import Config

from mmagic_vico.datasets.learnable_property import check_learnable_property

from . import checks
from .errors import InvalidValueError, MissingFileError

#: Top-level config fields that name the concept (and its class-image cache), and the nested keys that read them.
CONCEPT_FIELDS = {
    'data_root': ['train_dataloader.dataset.data_root'],
    'concept_dir': ['train_dataloader.dataset.concept_dir'],
    'placeholder': ['model.placeholder', 'train_dataloader.dataset.placeholder'],
    'initialize_token': ['model.initialize_token'],
    'identifier': ['model.identifier', 'train_dataloader.dataset.placeholder'],
    'learnable_property': ['train_dataloader.dataset.learnable_property'],
    'class_dir': ['train_dataloader.dataset.class_dir', 'default_hooks.class_images.class_dir'],
}


def apply_cfg_options(cfg, options: dict | None):
    """Merge ``--cfg-options`` into ``cfg``; a top-level concept field also reaches every key that
    the config file built from it (python configs resolve ``placeholder`` etc. at parse time). A
    ``learnable_property`` is checked first, and also sets ViCo's ``model.object_mask`` (a style has no
    object to mask) unless that is given too."""
    if not options:
        return cfg
    if 'learnable_property' in options:
        check_learnable_property(options['learnable_property'])
    cfg.merge_from_dict(options)
    for field, targets in CONCEPT_FIELDS.items():
        if field not in options:
            continue
        for target in targets:
            parent, _, key = target.rpartition('.')
            node = cfg
            try:
                for part in parent.split('.'):
                    node = node[part]
            except (KeyError, TypeError):
                continue
            if key in node and f'{target}' not in options:
                node[key] = options[field]
    follows = 'object_mask' in cfg.get('model', {}) and 'model.object_mask' not in options
    if 'learnable_property' in options and follows:
        cfg.model.object_mask = options['learnable_property'] == 'object'
    return cfg


def concept_name(cfg) -> str | None:
    """The concept a config trains (its ``concept_dir``, as one folder name), or None."""
    dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    concept = dataset.get('concept_dir', cfg.get('concept_dir'))
    if not isinstance(concept, str) or not concept.strip('/'):
        return None
    return concept.strip('/').replace('/', '_')


def work_dir_of(cfg, config_path: str, work_dir: str | None = None) -> str:
    """``--work-dir``, else the config's ``work_dir``, else ``work_dirs/<config name>/<concept>``
    (``work_dirs/<config name>`` for a config without a concept): two concepts never share a folder."""
    if work_dir:
        return work_dir
    if cfg.get('work_dir'):
        return cfg.work_dir
    folder = os.path.join('work_dirs', os.path.splitext(os.path.basename(config_path))[0])
    concept = concept_name(cfg)
    return os.path.join(folder, concept) if concept else folder


#: Top-level keys a config may gain from the command line although the file does not set them.
EXTRA_TOP_LEVEL = ('work_dir', 'custom_hooks', 'model_wrapper_cfg', 'custom_imports', 'launcher', 'experiment_name',
                   'load_from', 'resume', 'auto_scale_lr', 'param_scheduler', 'gpu_ids')


def _suggest(key: str, known) -> str:
    close = difflib.get_close_matches(key, [str(k) for k in known], n=1, cutoff=0.6)
    return f'did you mean {close[0]!r}? ' if close else ''


def _registered(type_name):
    """The class a config ``type`` names, in any registry of the scope (None if unknown)."""
    if not isinstance(type_name, str):
        return type_name if isinstance(type_name, type) else None
    from mmengine import registry as mm

    from mmagic_vico import registry as ours
    for reg in (ours.MODELS, ours.DATASETS, ours.TRANSFORMS, ours.HOOKS, ours.OPTIM_WRAPPERS,
                ours.OPTIM_WRAPPER_CONSTRUCTORS, ours.VISUALIZERS, ours.VISBACKENDS, ours.DATA_SAMPLERS, mm.LOOPS,
                mm.OPTIMIZERS, mm.PARAM_SCHEDULERS, mm.LOG_PROCESSORS):
        try:
            found = reg.get(type_name)
        except Exception:  # a registry that cannot import its locations
            found = None
        if found is not None:
            return found
    return None


def accepted_arguments(cls) -> set | None:
    """Keyword arguments ``cls(...)`` takes, following ``**kwargs`` up the class hierarchy; None: any."""
    names = set()
    for klass in getattr(cls, '__mro__', (cls,)):
        if klass is object or '__init__' not in vars(klass):
            continue
        try:
            params = inspect.signature(klass.__init__).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names - {'self'}
    return None  # **kwargs all the way up: anything goes


_MISSING = object()


def _child(node, part: str):
    """``node[part]`` of a config section (or of a list, by index), or ``_MISSING``."""
    if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    if isinstance(node, (dict, Config)) and part in node:
        return node[part]
    return _MISSING


def check_cfg_options(cfg, options: dict | None, source: str = 'the config') -> None:
    """Refuse ``--cfg-options`` keys that would silently do nothing (a typo): a top-level key the config
    and the runner do not know, a dotted key under a missing section, or an argument the section's
    ``type`` does not take. The error names the option and suggests the closest known key."""
    from mmengine.runner import Runner
    top_level = set(cfg.keys()) | set(accepted_arguments(Runner) or ()) | set(EXTRA_TOP_LEVEL)
    for option in options or {}:
        parts = option.split('.')
        node, path = cfg, []
        for part in parts[:-1]:
            child = _child(node, part)
            if child is not _MISSING:
                node = child
            else:
                known = list(node.keys()) if isinstance(node, (dict, Config)) else []
                where = '.'.join(path) or 'the top level'
                raise InvalidValueError(f'--cfg-options {option}: {source} has no {".".join(path + [part])!r}; '
                                        f'{_suggest(part, known)}keys at {where}: {sorted(map(str, known))[:20]}.')
            path.append(part)
        key = parts[-1]
        if not path:
            if key not in top_level:
                raise InvalidValueError(f'--cfg-options {option}: {source} has no top-level key {key!r}, so it would '
                                        f'do nothing; {_suggest(key, top_level)}check the spelling (keys: '
                                        f'{sorted(k for k in cfg.keys() if not k.startswith("_"))}).')
            continue
        if not isinstance(node, dict) or key in node or key in ('type', '_scope_'):
            continue
        cls = _registered(options.get('.'.join(path + ['type']), node.get('type')))
        accepted = accepted_arguments(cls) if cls is not None else None
        if accepted is not None and key not in accepted:
            raise InvalidValueError(f'--cfg-options {option}: {getattr(cls, "__name__", cls)} ({".".join(path)}) takes '
                                    f'no argument {key!r}; {_suggest(key, accepted | set(node.keys()))}it takes '
                                    f'{sorted(accepted - {"runner", "dataloader"})}.')


def load_config(path: str, options: dict | None = None):
    """A tool's config: the file (with a clear error and a suggestion if it does not exist), its
    ``--cfg-options`` checked (:func:`check_cfg_options`) and applied (:func:`apply_cfg_options`)."""
    if not os.path.isfile(path):
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        configs = sorted(os.path.relpath(p) for p in glob.glob(os.path.join(repo, 'configs', '*', '*.py')))
        close = difflib.get_close_matches(path, configs, n=3, cutoff=0.5)
        raise MissingFileError(f'config file {path!r} does not exist; '
                               f'{"did you mean " + " or ".join(close) + "? " if close else ""}'
                               'give a config such as configs/vico/vico.py (configs/vico/vico_tiny.py: the '
                               'offline tiny default).')
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as err:
        raise InvalidValueError(f'config file {path!r} is not valid Python: {err.msg} on line {err.lineno} '
                                f'({(err.text or "").strip()!r}); fix that line.') from None
    check_cfg_options(cfg, options, path)
    options = check_option_values(cfg, options)
    cfg = apply_cfg_options(cfg, options)
    check_finite(cfg)
    return cfg


def _value_at(cfg, option: str):
    """The value the config holds at a dotted key before an option changes it: the file's, else the
    default of the argument in the registered class (``_MISSING`` when neither is known)."""
    node = cfg
    parts = option.split('.')
    for part in parts[:-1]:
        node = _child(node, part)
        if node is _MISSING:
            return _MISSING
    if _child(node, parts[-1]) is not _MISSING:
        return _child(node, parts[-1])
    cls = _registered(node.get('type')) if isinstance(node, (dict, Config)) else None
    for klass in getattr(cls, '__mro__', ()):
        init = vars(klass).get('__init__')
        try:
            param = inspect.signature(init).parameters.get(parts[-1]) if init else None
        except (TypeError, ValueError):
            param = None
        if param is not None and param.default is not param.empty:
            return param.default
    return _MISSING


def check_option_values(cfg, options: dict | None) -> dict | None:
    """``--cfg-options`` values of the kind the key holds: a number where the config has a number, True /
    False where it has a bool (a word there would fail later, far from the flag); a number given for a
    text key (``concept_dir=2024``) is taken as that text."""
    if not options:
        return options
    checked = dict(options)
    for option, value in options.items():
        old = _value_at(cfg, option)
        if isinstance(old, bool):
            if not isinstance(value, bool):
                raise InvalidValueError(f'--cfg-options {option}={value!r}: give True or False (the config has '
                                        f'{old!r}).')
        elif checks.is_number(old) and not checks.is_number(value):
            raise InvalidValueError(f'--cfg-options {option}={value!r}: give a number (the config has {old!r}, e.g. '
                                    f'{option}={old!r}).')
        elif isinstance(old, str) and isinstance(value, int) and not isinstance(value, bool):
            checked[option] = str(value)
    return checked


def _non_finite(node, path=''):
    if isinstance(node, float) and not math.isfinite(node):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _non_finite(value, f'{path}.{key}' if path else str(key))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _non_finite(value, f'{path}.{i}')


def check_finite(cfg) -> None:
    """No NaN or infinity anywhere in a config (a NaN weight trains to NaN; its error would blame another
    setting)."""
    for key, value in _non_finite(cfg.to_dict()):
        raise InvalidValueError(f'{key}={value!r} is not a finite number; give a finite value (--cfg-options '
                                f'{key}=...), or leave the option out for the config\'s own.')


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_train_cfg(cfg, path: str = 'the config') -> None:
    """The schedule, batch and seed a training run needs, checked before anything is built or written."""
    if not cfg.get('train_dataloader') or not cfg.get('train_cfg'):
        raise InvalidValueError(f'{path} is not a training config (it has no train_dataloader / train_cfg): '
                                f'{cfg.get("model", {}).get("type", "this method")} trains nothing here. Train with a '
                                'method config such as configs/vico/vico.py; for Aesthetic Gradients make an '
                                'embedding with tools/make_aesthetic_embedding.py and sample with tools/infer.py.')
    seed = (cfg.get('randomness') or {}).get('seed')
    if seed is not None:
        checks.seed('randomness.seed', seed)
    loop = cfg.get('train_cfg') or {}
    if 'max_iters' in loop and not _positive_int(loop.max_iters):
        raise InvalidValueError(f'train_cfg.max_iters={loop.max_iters!r}: train for a positive number of iterations '
                                '(--cfg-options train_cfg.max_iters=400).')
    loader = cfg.get('train_dataloader') or {}
    if 'batch_size' in loader and not _positive_int(loader.batch_size):
        raise InvalidValueError(f'train_dataloader.batch_size={loader.batch_size!r}: give a positive integer '
                                '(--cfg-options train_dataloader.batch_size=1).')
    if 'learnable_property' in (loader.get('dataset') or {}):  # a config file's value, before the Runner starts
        check_learnable_property(loader.dataset.learnable_property)
    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer') or {}
    lr = optimizer.get('lr')
    if lr is not None and (not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0):
        raise InvalidValueError(f'optim_wrapper.optimizer.lr={lr!r}: the learning rate must be a positive number '
                                '(the method config sets it, e.g. --cfg-options optim_wrapper.optimizer.lr=5e-3).')
    accumulate = (cfg.get('optim_wrapper') or {}).get('accumulative_counts', 1)
    if not _positive_int(accumulate):
        raise InvalidValueError(f'optim_wrapper.accumulative_counts={accumulate!r}: give a positive integer (1: no '
                                'gradient accumulation).')
    if 'weight_decay' in optimizer:
        checks.number('optim_wrapper.optimizer.weight_decay', optimizer.weight_decay, minimum=0, hint='1e-2 by default')
    for i, beta in enumerate(optimizer.get('betas') or ()):
        if not (checks.is_number(beta) and 0 <= beta < 1):
            raise InvalidValueError(f'optim_wrapper.optimizer.betas.{i}={beta!r} must be in [0, 1) ((0.9, 0.999) by '
                                    'default).')
    if 'eps' in optimizer:
        checks.number('optim_wrapper.optimizer.eps', optimizer.eps, minimum=1e-30, hint='1e-8 by default')
    checks.integer('train_dataloader.num_workers', loader.get('num_workers', 0), 0, '0: load in the main process')
    dataset = loader.get('dataset') or {}
    checks.number('train_dataloader.dataset.flip_prob', dataset.get('flip_prob', 0.0), 0, 1,
                  hint='0: no flip, as the original')
    for name, hook in (cfg.get('default_hooks') or {}).items():  # mmengine's too: interval 0 would never run
        if isinstance(hook, dict) and 'interval' in hook and not (_positive_int(hook.interval) or hook.interval == -1):
            raise InvalidValueError(f'default_hooks.{name}.interval={hook.interval!r}: give a positive number of '
                                    'iterations (-1: never).')
