"""Everything a training run reads from its config, checked before the model loads (Stable Diffusion
takes a while to load, and a mistake found at the first sample grid would cost the iterations before
it): the dataset (photos, templates, captions, placeholder), the settings of every hook of this
package (named by their config key) and DreamBooth's cached class images."""
import contextlib
import copy
import re

from mmagic_vico.models.dreambooth.class_images import check_class_images, class_images_record
from mmagic_vico.registry import DATASETS, HOOKS
from mmagic_vico.utils.errors import InvalidValueError, UserError


@contextlib.contextmanager
def config_key(key: str):
    """Name the config key in a user error raised inside the block (``num_images=0 ...`` becomes
    ``default_hooks.sample_grid.num_images=0 ...``); an argument the class does not take is one too."""
    try:
        yield
    except UserError as err:
        text = str(err)
        raise type(err)(f'{key}.{text}' if re.match(r'\w+=', text) else f'{key}: {text}') from None
    except TypeError as err:  # a config file's own typo: "got an unexpected keyword argument"
        raise InvalidValueError(f'{key}: {err}; check the spelling of its keys.') from None


def hook_configs(cfg) -> list:
    """``(config key, hook config)`` of the default and custom hooks."""
    hooks = [(f'default_hooks.{name}', hook) for name, hook in (cfg.get('default_hooks') or {}).items()]
    hooks += [(f'custom_hooks.{i}', hook) for i, hook in enumerate(cfg.get('custom_hooks') or [])]
    return [(key, hook) for key, hook in hooks if isinstance(hook, dict) and isinstance(hook.get('type'), str)]


def check_hooks(cfg) -> None:
    """Build this package's hooks once, as the runner will (their arguments are checked when built)."""
    for key, hook in hook_configs(cfg):
        cls = HOOKS.get(hook['type'])
        if cls is None or not cls.__module__.startswith('mmagic_vico'):
            continue
        with config_key(key):
            cls(**{k: v for k, v in hook.items() if k not in ('type', '_scope_', 'priority')})


def check_cached_class_images(cfg) -> None:
    """DreamBooth's class images already in ``class_dir`` were made with this class prompt, model and sampler."""
    for key, hook in hook_configs(cfg):
        if hook['type'] != 'ClassImagesHook':
            continue
        sampler = {k: hook[k] for k in ('num_inference_steps', 'guidance_scale', 'height', 'width', 'seed')
                   if k in hook}
        record = class_images_record(cfg.model.get('class_prompt'), cfg.model.get('pretrained_model'), **sampler)
        with config_key(f'{key}.class_dir'):
            check_class_images(hook['class_dir'], record, write=False)


def check_training_inputs(cfg) -> None:
    """The dataset is built once (photos read, templates and captions checked), then the hooks."""
    dataset = copy.deepcopy(cfg.train_dataloader.dataset)
    kind = dataset.pop('type')
    cls = kind if isinstance(kind, type) else DATASETS.get(kind)
    if cls is not None and cls.__module__.startswith('mmagic_vico'):
        with config_key('train_dataloader.dataset'):
            cls(**{k: v for k, v in dataset.items() if k != '_scope_'})
    check_hooks(cfg)
    check_cached_class_images(cfg)
