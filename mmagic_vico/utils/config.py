"""Config helpers shared by the tools."""
import os

#: Top-level config fields that name the concept, and the nested keys that read them.
CONCEPT_FIELDS = {
    'data_root': ['train_dataloader.dataset.data_root'],
    'concept_dir': ['train_dataloader.dataset.concept_dir'],
    'placeholder': ['model.placeholder', 'train_dataloader.dataset.placeholder'],
    'initialize_token': ['model.initialize_token'],
}


def apply_cfg_options(cfg, options: dict | None):
    """Merge ``--cfg-options`` into ``cfg``; a top-level concept field also reaches every key that
    the config file built from it (python configs resolve ``placeholder`` etc. at parse time)."""
    if not options:
        return cfg
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
    return cfg


def work_dir_of(cfg, config_path: str, work_dir: str | None = None) -> str:
    """``--work-dir``, else the config's ``work_dir``, else ``work_dirs/<config name>``."""
    if work_dir:
        return work_dir
    if cfg.get('work_dir'):
        return cfg.work_dir
    return os.path.join('work_dirs', os.path.splitext(os.path.basename(config_path))[0])
