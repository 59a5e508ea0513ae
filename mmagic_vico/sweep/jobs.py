"""A (method, subject) job of the DreamBench sweep: the method's config with the subject's fields, its
folders, and what made its weights and its scores."""
import os
from dataclasses import dataclass, field

from mmagic_vico.registry import MODELS
from mmagic_vico.utils.config import load_config
from mmagic_vico.utils.errors import ConflictError, InvalidValueError
from mmagic_vico.utils.image import list_images
from mmagic_vico.utils.manifest import weights_sha256
from .records import read_record


def subject_options(cfg, dreambench: str, subject: str, noun: str, class_root: str, initialize_tokens: dict) -> dict:
    """``--cfg-options`` that train ``cfg``'s method on a DreamBench subject: its photos, and its class noun
    wherever the method names the class (the placeholder's ``initialize_token``; DreamBooth's captions,
    prior-preservation prompt and class-image folder, as configs/dreambooth/dreambooth.py builds them)."""
    options = {'data_root': os.path.abspath(dreambench), 'concept_dir': subject}
    if 'initialize_token' in cfg:
        token = initialize_tokens.get(noun, noun)
        if len(token.split()) != 1:
            raise InvalidValueError(f'the class of {subject} is {noun!r}, more than one word, and initialize_token '
                                    f'needs one CLIP token: map it to one in the sweep config, e.g. '
                                    f"initialize_tokens={{{noun!r}: 'plush'}}.")
        options['initialize_token'] = token
    if 'class_noun' in cfg:
        class_dir = os.path.join(class_root, noun.replace(' ', '_'))  # shared by the subjects of a class
        identifier = cfg.get('identifier', 'sks')
        options.update({
            'class_noun': noun, 'class_dir': class_dir, 'model.class_prompt': f'a photo of {noun}',
            'train_dataloader.dataset.caption': 'a photo of {} ' + noun,
            'train_dataloader.dataset.class_dir': class_dir, 'default_hooks.class_images.class_dir': class_dir,
            'default_hooks.sample_grid.prompts': [f'a photo of {identifier} {noun}']})
    return options


def trains(cfg) -> bool:
    """Whether a method config trains anything: False for the base model sampled as it is (DreamBench's
    unpersonalized row), which has no training, no weights and no subject options."""
    return bool(MODELS.get(cfg.model.type).trainable_markers)


@dataclass
class Job:
    """One method trained on one subject, evaluated, scored; everything under ``folder``."""
    method: str
    subject: str
    noun: str
    config: str  # the method's config file, as the sweep config names it
    folder: str
    cfg: object = field(repr=False)  # the method config with the subject's and the sweep's options
    made_by: dict = field(repr=False)  # what the trained weights depend on

    @property
    def name(self) -> str:
        return f'{self.method}/{self.subject}'

    @property
    def train_dir(self) -> str:
        return os.path.join(self.folder, 'train')

    @property
    def images_dir(self) -> str:
        return os.path.join(self.folder, 'images')

    @property
    def config_file(self) -> str:
        """The config that trains the job, written beside it."""
        return os.path.join(self.folder, 'config.py')

    @property
    def weights(self) -> str | None:
        if not trains(self.cfg):
            return None
        return os.path.join(self.train_dir, f'{MODELS.get(self.cfg.model.type).weights_name}.safetensors')

    @property
    def train_record(self) -> str:
        return os.path.join(self.train_dir, 'made_by.json')

    @property
    def scores_record(self) -> str:
        return os.path.join(self.folder, 'scores.json')

    def trained(self, verify: bool = True) -> dict | None:
        """The training record when these weights are done, else None; ``verify``: check that the weights
        file is the one recorded (its hash, when its size or time changed)."""
        if not trains(self.cfg):
            return dict(weights_sha256=None)
        record = read_record(self.train_record, self.made_by, self.train_dir)
        if record is None or not verify:
            return record
        stat = os.stat(self.weights) if os.path.isfile(self.weights) else None
        unchanged = stat is not None and (stat.st_size, stat.st_mtime_ns) == (record['weights_size'],
                                                                              record['weights_mtime_ns'])
        if not unchanged and (stat is None or weights_sha256(self.weights) != record['weights_sha256']):
            raise ConflictError(f'{self.weights} is missing or is not the file {self.train_record} recorded (sha256 '
                                f'{record["weights_sha256"][:12]}...): it was replaced or damaged. Delete '
                                f'{self.train_dir} to train {self.name} again (or pass --overwrite).')
        return record

    def check_unfinished_training(self) -> None:
        """A training begun with another config is refused: its checkpoint would be resumed into this one."""
        if not os.path.exists(os.path.join(self.train_dir, 'last_checkpoint')) or not os.path.exists(self.config_file):
            return
        with open(self.config_file, encoding='utf-8') as f:
            if f.read() != self.cfg.pretty_text:
                raise ConflictError(f'{self.train_dir} holds an unfinished training of another config '
                                    f'({self.config_file} differs from the one this sweep makes). Nothing was changed: '
                                    f'run the sweep as it was, give another --work-dir, delete {self.train_dir} to '
                                    'train afresh, or pass --overwrite.')

    def stale_outputs(self) -> list:
        """Images or scores of a job whose weights are not (or no longer) trained: other weights made them."""
        images = os.path.isdir(self.images_dir) and any(n.endswith('.png') for n in os.listdir(self.images_dir))
        return ([self.images_dir] if images else []) + ([self.scores_record] if os.path.exists(self.scores_record)
                                                          else [])


def make_jobs(sweep_cfg, methods: list, subjects: list, protocol, dreambench: str, work_dir: str, repo: str,
              seed: int) -> list:
    """The jobs, method-major; every config and option is checked here, before any work."""
    jobs = []
    for method in methods:
        config = sweep_cfg.methods[method]
        path = config if os.path.isabs(config) else os.path.join(repo, config)
        extra = dict(sweep_cfg.get('train_options', {}).get(method, {}))
        if sweep_cfg.get('pretrained_model'):
            extra['model.pretrained_model'] = sweep_cfg.pretrained_model
        base = load_config(path)
        does_train = trains(base)
        for subject in subjects:
            noun = protocol.classes[subject]
            list_images(os.path.join(dreambench, subject))  # its photos are there
            options = dict(extra)
            if does_train:
                options.update(subject_options(base, dreambench, subject, noun, os.path.join(work_dir, 'class_images'),
                                               dict(sweep_cfg.get('initialize_tokens', {}))))
                options['randomness.seed'] = seed
            cfg = load_config(path, options)
            made_by = dict(config=config, subject=subject, class_noun=noun, seed=seed,
                           steps=cfg.train_cfg.max_iters if does_train else 0,
                           initialize_token=options.get('initialize_token'),
                           pretrained_model=os.path.normpath(cfg.model.pretrained_model), train_options=extra)
            jobs.append(Job(method, subject, noun, config, os.path.join(work_dir, method, subject), cfg, made_by))
    return jobs
