"""What the web demo does, without the web: train a concept from a few photos with live progress,
load trained weights, generate. One ``DemoSession`` per demo process; one job at a time.

Training is the same mmengine Runner as ``tools/train.py`` (same config, same hooks: checkpoints,
exported weights, sample grids), run in a thread; a hook reports each iteration and each new sample
grid (the live preview) to the caller, who iterates over :meth:`DemoSession.train`.
"""
import json
import os
import queue
import shutil
import threading
import time
import warnings
from dataclasses import dataclass

import torch
from mmengine import Config
from mmengine.hooks import Hook

from mmagic_vico.engine.hooks import unwrap
from mmagic_vico.engine.runner import QuietRunner
from mmagic_vico.models.weights import read_safetensors
from mmagic_vico.registry import MODELS
from mmagic_vico.utils import register_all_modules
from mmagic_vico.utils.config import apply_cfg_options
from mmagic_vico.utils.image import IMAGE_EXTENSIONS, list_images

#: The paper's concepts have 4-7 photos; fewer or more still train, with a warning.
RECOMMENDED_PHOTOS = (4, 7)


@dataclass
class TrainProgress:
    """One report of a training run: iteration ``step`` of ``total``; ``preview`` is the path of a
    sample grid made at this step (None otherwise); ``weights`` is set on the last report."""
    step: int
    total: int
    loss: float | None = None
    preview: str | None = None
    weights: str | None = None
    stopped: bool = False


class ProgressHook(Hook):
    """Reports every iteration (loss) and every sample grid that the SampleGridHook made; stops the
    loop between iterations when ``stop`` is set. Runs after the other hooks of an iteration."""
    priority = 'LOWEST'

    def __init__(self, report, stop: threading.Event):
        self.report, self.stop, self.shown = report, stop, set()

    def _grid(self, runner, step):
        path = os.path.join(runner.work_dir, 'vis', f'iter_{step}.png')
        if path in self.shown or not os.path.exists(path):
            return None
        self.shown.add(path)
        return path

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        step = runner.iter + 1
        loss = outputs.get('loss') if isinstance(outputs, dict) else None
        self.report(TrainProgress(step, runner.max_iters, None if loss is None else loss.item(),
                                  self._grid(runner, step)))
        if self.stop.is_set():
            runner.train_loop.stop_training = True

    def after_train(self, runner):  # the end-of-run grid of a stopped run or an odd schedule
        grid = self._grid(runner, runner.iter)
        if grid is not None:
            self.report(TrainProgress(runner.iter, runner.max_iters, preview=grid))


class DemoSession:
    """The demo's state: the config it trains with, the photos of the current concept, the model.

    Args:
        config: a method config (default ViCo on the tiny offline SD 1.5).
        cfg_options: overrides, as ``--cfg-options`` (e.g. ``model.pretrained_model``).
        work_root: where each run gets a folder (photos, logs, checkpoints, weights, sample grids).
        device: where generation runs (training: wherever mmengine puts it).
    """

    def __init__(self, config: str = 'configs/vico/vico_tiny.py', cfg_options: dict | None = None,
                 work_root: str = 'work_dirs/demo', device: str | None = None):
        register_all_modules()
        self.config = config
        self.cfg = apply_cfg_options(Config.fromfile(config), cfg_options)
        self.work_root = os.path.abspath(work_root)
        self.device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        self.model, self.photos, self.weights = None, [], None
        self._lock, self._stop = threading.Lock(), threading.Event()

    # ------------------------------------------------------------------ defaults shown in the UI
    @property
    def placeholder(self) -> str:
        return self.cfg.model.get('placeholder') or self.cfg.model.get('identifier') or 'sks'

    @property
    def initialize_token(self) -> str:
        return self.cfg.model.get('initialize_token') or ''

    @property
    def learnable_property(self) -> str:
        return self.cfg.get('learnable_property', 'object')

    @property
    def max_iters(self) -> int:
        return int(self.cfg.train_cfg.max_iters)

    @property
    def preview_interval(self) -> int:
        return int(self.cfg.default_hooks.sample_grid.interval)

    @property
    def needs_reference(self) -> bool:
        return MODELS.get(self.cfg.model.type).needs_reference

    # ------------------------------------------------------------------ training
    def _new_run(self, photos: list) -> str:
        if not photos:
            raise ValueError('No concept photos: upload 4-7 photos of the subject (or pick an example concept).')
        bad = [p for p in photos if os.path.splitext(p)[1].lower() not in IMAGE_EXTENSIONS]
        if bad:
            raise ValueError(f'{[os.path.basename(p) for p in bad]} are not images ({", ".join(IMAGE_EXTENSIONS)}); '
                             'remove them from the concept photos.')
        lo, hi = RECOMMENDED_PHOTOS
        if not lo <= len(photos) <= hi:
            warnings.warn(f'{len(photos)} concept photos: ViCo is made for {lo}-{hi}; training goes on.')
        run = os.path.join(self.work_root, time.strftime('run_%Y%m%d_%H%M%S'))
        suffix = 0
        while os.path.exists(run + (f'_{suffix}' if suffix else '')):
            suffix += 1
        run += f'_{suffix}' if suffix else ''
        concept = os.path.join(run, 'concept')
        os.makedirs(concept)
        for i, path in enumerate(photos):  # numbered copies: the dataset's order is the upload order
            shutil.copyfile(path, os.path.join(concept, f'{i:02d}_{os.path.basename(path)}'))
        return run

    def train_cfg(self, run: str, placeholder: str, initialize_token: str, steps: int, preview_every: int,
                  preview_prompt: str, preview_steps: int | None = None, learnable_property: str | None = None):
        """The run's config: this config with the concept, schedule and preview prompt set;
        ``learnable_property`` ('object' / 'style', default: the config's) picks the captions."""
        if steps < 1:
            raise ValueError(f'steps={steps}: train for at least 1 step ({self.max_iters} by default).')
        if preview_every < 1:
            raise ValueError(f'preview every {preview_every} steps: give 1 or more.')
        if '{}' not in preview_prompt:
            raise ValueError(f'preview prompt {preview_prompt!r} has no "{{}}" for the placeholder; '
                             'write e.g. "a photo of {}".')
        options = dict(data_root=run, concept_dir='concept', placeholder=placeholder)
        if 'initialize_token' in self.cfg.model:
            options['initialize_token'] = initialize_token
        if learnable_property is not None:
            options['learnable_property'] = learnable_property
        cfg = apply_cfg_options(Config(self.cfg.to_dict()), options)
        cfg.work_dir = os.path.join(run, 'work')
        cfg.experiment_name = os.path.basename(run)
        cfg.train_cfg.max_iters = steps
        hooks = cfg.default_hooks
        hooks.checkpoint.interval = hooks.export.interval = steps
        hooks.logger.interval = min(hooks.logger.interval, steps)
        hooks.sample_grid.update(interval=preview_every, prompts=[preview_prompt], num_images=1)
        if preview_steps:
            hooks.sample_grid.num_inference_steps = preview_steps
        return cfg

    def train(self, photos: list, placeholder: str, initialize_token: str, steps: int, preview_every: int,
              preview_prompt: str = 'a photo of {}', preview_steps: int | None = None, timeout: float = 0.5,
              learnable_property: str | None = None):
        """Train on ``photos``; yields :class:`TrainProgress` reports as they come (the last one carries
        the weights file). Errors of the run are raised here; a run that fails before its first step
        leaves no folder behind. The trained model is kept for :meth:`generate`."""
        self._acquire()
        try:
            run = self._new_run(list(photos))
            started = False
            try:
                for report in self._run(run, placeholder, initialize_token, int(steps), int(preview_every),
                                        preview_prompt, preview_steps, timeout, learnable_property):
                    started = started or report.step >= 1
                    yield report
            except Exception:
                if not started:  # nothing trained: no folder for a run that never was
                    shutil.rmtree(run, ignore_errors=True)
                raise
        finally:
            self._lock.release()

    def _run(self, run: str, placeholder: str, initialize_token: str, steps: int, preview_every: int,
             preview_prompt: str, preview_steps: int | None, timeout: float, learnable_property: str | None):
        cfg = self.train_cfg(run, placeholder, initialize_token, steps, preview_every, preview_prompt, preview_steps,
                             learnable_property)
        reports, result = queue.Queue(), {}
        self._stop.clear()

        def work():
            try:
                runner = QuietRunner.from_cfg(cfg)
                runner.register_hook(ProgressHook(reports.put, self._stop))
                runner.train()
                result['model'] = unwrap(runner.model).eval()
            except BaseException as err:  # handed to the caller's thread
                result['error'] = err
            finally:
                reports.put(None)

        thread = threading.Thread(target=work, name='mmagic_vico-demo-train', daemon=True)
        thread.start()
        last = TrainProgress(0, steps)
        while True:
            try:
                report = reports.get(timeout=timeout)
            except queue.Empty:
                continue
            if report is None:
                break
            last = report
            yield report
        thread.join()
        if 'error' in result:
            raise result['error']
        model = result['model']
        self.model, self.photos = model, list_images(os.path.join(run, 'concept'))
        self.weights = os.path.join(cfg.work_dir, f'{model.weights_name}.safetensors')
        yield TrainProgress(last.step, last.total, last.loss, weights=self.weights, stopped=last.step < last.total)

    def stop(self) -> None:
        """Ask a running training to stop after its current iteration (weights are still exported)."""
        self._stop.set()

    # ------------------------------------------------------------------ trained weights
    def load(self, weights: str, photos: list | None = None):
        """Build the model for ``weights`` (its placeholder, initialisation token and layers come from
        the file) and load them. ``photos``: the concept's photos (ViCo's reference image)."""
        _, meta = read_safetensors(weights)
        meta = {k: json.loads(v) for k, v in meta.items() if k != 'format'}
        method = meta.get('method')
        if method and method != self.cfg.model.type:
            raise ValueError(f'{os.path.basename(weights)} holds {method} weights but the demo runs '
                             f'{self.cfg.model.type} ({self.config}); start it with that method\'s config '
                             f'(python tools/demo.py --config configs/<method>/...).')
        model_cfg = self.cfg.model.copy()
        for key in ('placeholder', 'initialize_token', 'num_vectors', 'image_cross_layers', 'object_mask'):
            if key in meta and key in model_cfg:
                model_cfg[key] = meta[key]
        self._acquire()
        try:
            model = MODELS.build(model_cfg)
            model.load_weights(weights)
            self.model, self.weights = model.to(self.device).eval(), weights
            if photos:
                self.photos = list(photos)
        finally:
            self._lock.release()
        return self.model

    # ------------------------------------------------------------------ sampling
    def generate(self, prompts, num_images: int = 1, steps: int = 50, guidance: float = 7.5, seed: int = 0,
                 reference: str | None = None, height: int | None = None, width: int | None = None,
                 show_progress: bool = True) -> list:
        """Images of the trained (or loaded) concept for each prompt (``num_images`` each)."""
        prompts = [p.strip() for p in ([prompts] if isinstance(prompts, str) else prompts) if p and p.strip()]
        if not prompts:
            raise ValueError('No prompt: write one per line, with the placeholder, e.g. "a photo of S* on the beach".')
        self._acquire()  # first: while a training runs, the model is not ours to read
        try:
            if self.model is None:
                raise RuntimeError('No concept yet: train one, or load trained weights, before generating.')
            placeholder = self.model.placeholder
            missing = [p for p in prompts if placeholder and placeholder not in p]
            if missing and len(missing) < len(prompts):  # none at all: the model's own warning says so
                warnings.warn(f'{missing} do not contain the placeholder {placeholder!r}: '
                              'they will not show the learned concept.')
            extra = {}
            if self.model.needs_reference:
                reference = reference or (self.photos[0] if self.photos else None)
                if reference is None:
                    raise ValueError(f'{self.model.method_name} needs a reference photo of the concept: '
                                     'upload one (or the concept photos).')
                extra['image_reference'] = reference
            self.model.to(self.device)
            return self.model.infer(prompts, num_inference_steps=int(steps), guidance_scale=float(guidance),
                                    num_images_per_prompt=int(num_images), seed=int(seed), height=height,
                                    width=width, show_progress=show_progress, **extra)['samples']
        finally:
            self._lock.release()

    def _acquire(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise RuntimeError('The demo is busy with a training or a generation; wait for it to finish.')
