"""Training hooks: export the trainable weights, sample a grid, stop on a non-finite loss with the last
good weights kept, keep random state across resume."""
import glob
import math
import os
import re

import numpy as np
import torch
from mmengine.dist import barrier, get_world_size, is_main_process, master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmagic_vico.models.dreambooth.class_images import generate_class_images
from mmagic_vico.models.weights import non_finite, read_safetensors
from mmagic_vico.registry import HOOKS
from mmagic_vico.utils import checks
from mmagic_vico.utils.atomic import atomic_copy, atomic_save_image
from mmagic_vico.utils.errors import InvalidValueError, MissingFileError, TrainingStoppedError
from mmagic_vico.utils.image import make_grid, open_image
from .checkpoint import decode_message_hub, encode_message_hub


def unwrap(model):
    return model.module if is_model_wrapper(model) else model


def export_weights(runner, step: int) -> tuple:
    """Write ``{name}_iter_{step}.safetensors``, copy it to ``{name}.safetensors`` (the latest) and the
    model's extra exports into the work dir, each atomically; returns the two weights paths."""
    model = unwrap(runner.model)
    path = os.path.join(runner.work_dir, f'{model.weights_name}_iter_{step}.safetensors')
    model.save_weights(path)
    latest = os.path.join(runner.work_dir, f'{model.weights_name}.safetensors')
    atomic_copy(path, latest)
    model.export_extras(runner.work_dir)
    return path, latest


class EveryNAndEndHook(Hook):
    """Calls :meth:`run` every ``interval`` iterations and once more at the end if it was not the last."""
    priority = 'LOW'

    def __init__(self, interval: int = 100):
        self.interval = checks.positive_int('interval', interval, 'every how many iterations, e.g. 100')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.every_n_train_iters(runner, self.interval):
            self.run(runner, runner.iter + 1)  # mmengine counts the iteration after its hooks

    def after_train(self, runner):
        if runner.iter % self.interval:
            self.run(runner, runner.iter)

    def run(self, runner, step: int):
        raise NotImplementedError


@HOOKS.register_module()
class ExportWeightsHook(EveryNAndEndHook):
    """Every ``interval`` iterations and at the end, write the trainable weights beside the checkpoints.

    Files: ``{name}_iter_{n}.safetensors``, ``{name}.safetensors`` (the latest), where ``name`` is the
    model's ``weights_name`` (``vico_weights`` for ViCo), and ``learned_embeds.safetensors`` (the
    placeholder, for diffusers' ``load_textual_inversion``).
    """

    @master_only
    def run(self, runner, step: int):
        path, latest = export_weights(runner, step)
        runner.logger.info(f'exported the trainable weights to {path} and {latest}')


@HOOKS.register_module()
class SampleGridHook(EveryNAndEndHook):
    """Every ``interval`` iterations and at the end, sample fixed prompts (with a fixed reference image
    for methods that take one: ``model.needs_reference``).

    The grid (rows: prompts, each written under its row) goes to ``work_dir/vis/iter_{n}.png`` and to the visualizer's backends.
    Sampling runs on the fp32 trainable weights themselves: nothing is cast and cast back.
    """

    def __init__(self, interval: int = 100, prompts=('a photo of {}',), reference: str | None = None,
                 num_images: int = 2, num_inference_steps: int = 50, guidance_scale: float = 7.5,
                 height: int | None = None, width: int | None = None, seed: int = 0):
        super().__init__(interval)
        if isinstance(prompts, str) or not prompts:
            raise InvalidValueError(f'prompts={prompts!r}: give a list of prompts with "{{}}" for the placeholder, '
                                    'e.g. ["a photo of {}"].')
        self.prompts = [checks.template('prompts', p) for p in prompts]
        if reference is not None:  # a typo here would otherwise surface at the first sample grid, mid-training
            if not isinstance(reference, str) or not os.path.isfile(reference):
                raise MissingFileError(f'reference={reference!r} does not exist; give a photo of the concept, or leave '
                                       'reference out (None) to use the first concept photo.')
            open_image(reference)
        self.reference = reference
        checks.sampling(num_images=num_images, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                        height=height, width=width, seed=seed)  # named as in the config
        self.kwargs = dict(num_images_per_prompt=num_images, num_inference_steps=num_inference_steps,
                           guidance_scale=guidance_scale, height=height, width=width, seed=seed, show_progress=False)

    def before_train(self, runner):
        if self.reference is None:  # the first concept image
            dataset = runner.train_dataloader.dataset
            self.reference = dataset.images[0] if hasattr(dataset, 'images') else None
        if self.reference is None:
            raise ValueError('SampleGridHook needs reference=PATH (the dataset has no image list).')

    @master_only
    def run(self, runner, step: int):
        model = unwrap(runner.model)
        prompts = [p.format(model.placeholder) for p in self.prompts]
        was_training = model.training
        model.eval()
        reference = dict(image_reference=self.reference) if model.needs_reference else {}
        samples = model.infer(prompts, **reference, **self.kwargs)['samples']
        model.train(was_training)
        grid = make_grid(samples, self.kwargs['num_images_per_prompt'], captions=prompts)
        path = os.path.join(runner.work_dir, 'vis', f'iter_{step}.png')
        atomic_save_image(path, grid)
        runner.visualizer.add_image('samples', np.asarray(grid), step=step)
        runner.logger.info(f'saved samples of {prompts} to {path}')


@HOOKS.register_module()
class ClassImagesHook(Hook):
    """Before training, generate the prior-preservation class images with the still-frozen model
    (DreamBooth): once, cached in ``class_dir``, resumed if interrupted; other ranks wait."""
    priority = 'VERY_HIGH'

    def __init__(self, class_dir: str, num_images: int = 100, batch_size: int = 4, num_inference_steps: int = 50,
                 guidance_scale: float = 7.5, height: int | None = None, width: int | None = None, seed: int = 0):
        self.class_dir = checks.output_dir(class_dir, 'class_dir') if isinstance(class_dir, str) and class_dir else None
        if self.class_dir is None:
            raise InvalidValueError(f'class_dir={class_dir!r}: give the folder that caches the class images, e.g. '
                                    '"work_dirs/class_images/dog".')
        self.num_images = checks.positive_int('num_images', num_images, 'DreamBooth uses 200')
        self.kwargs = checks.sampling(batch_size=batch_size, num_inference_steps=num_inference_steps,
                                      guidance_scale=guidance_scale, height=height, width=width, seed=seed)

    def before_train(self, runner):
        if is_main_process():
            model = unwrap(runner.model)
            was_training = model.training
            model.eval()
            made = generate_class_images(model, model.class_prompt, self.class_dir, self.num_images, **self.kwargs)
            model.train(was_training)
            runner.logger.info(f'class images in {self.class_dir}: {made} generated, '
                               f'{self.num_images - made} reused')
        barrier()


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training at the first NaN or infinite loss, with the last good trainable weights kept.

    Before each iteration the trainable weights are copied (on the CPU) into one of two buffers, so
    that the weights entering the previous iteration, the last whose loss was finite, are at hand. At
    a non-finite loss in iteration ``i`` (counted from 1, as logged) they are put back into the model
    and exported as :class:`ExportWeightsHook` does (``{name}_iter_{i-2}.safetensors`` and
    ``{name}.safetensors``), and training stops with a ``RuntimeError`` that says where they are and
    suggests fp32 and a lower learning rate. Runs first among the hooks of an iteration, so neither
    the export nor the checkpoint of that iteration writes diverged weights. Models with more than
    ``max_snapshot_numel`` trainable values (full DreamBooth) keep no copy: the error names the last
    finite periodic export instead.
    """
    priority = 'VERY_HIGH'

    def __init__(self, max_snapshot_numel: int = 100_000_000):
        self.max_snapshot_numel = max_snapshot_numel
        self.params, self.buffers, self.entering = [], [], [None, None]

    def before_train(self, runner):
        params = [p for p in unwrap(runner.model).parameters() if p.requires_grad]
        if sum(p.numel() for p in params) <= self.max_snapshot_numel:
            self.params = params
            self.buffers = [[torch.empty_like(p, device='cpu') for p in params] for _ in range(2)]

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.params:
            slot = runner.iter % 2
            with torch.no_grad():
                for buffer, param in zip(self.buffers[slot], self.params):
                    buffer.copy_(param)
            self.entering[slot] = runner.iter  # the weights after runner.iter iterations

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        losses = {k: float(v.detach() if isinstance(v, torch.Tensor) else v)
                  for k, v in (outputs or {}).items() if 'loss' in k and v is not None}
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        if not bad:
            return
        kept = self._keep_last_good(runner)
        message = (f'Training stopped at iteration {runner.iter + 1}: the loss is not finite ({bad}). {kept} '
                   'To go on, train in fp32 (no --amp, model.frozen_dtype=None) and with a lower learning rate '
                   '(e.g. --cfg-options optim_wrapper.optimizer.lr=<a tenth of it>); check the concept photos too.')
        runner.logger.error(message)
        raise TrainingStoppedError(message)

    def _keep_last_good(self, runner) -> str:
        good = runner.iter - 1  # weights entering the iteration before: their loss was finite
        slot = good % 2
        snapshot = self.buffers[slot] if self.params and good >= 1 and self.entering[slot] == good else None
        if snapshot is not None and not non_finite(dict(enumerate(snapshot))):
            with torch.no_grad():
                for param, buffer in zip(self.params, snapshot):
                    param.copy_(buffer)
            if is_main_process():
                path, latest = export_weights(runner, good)
                return f'The last good trainable weights (after iteration {good}) are kept in {path} and {latest}.'
            return f'The last good trainable weights (after iteration {good}) are kept in the work dir.'
        model = unwrap(runner.model)
        exports = []
        for path in glob.glob(os.path.join(runner.work_dir, f'{model.weights_name}_iter_*.safetensors')):
            found = re.search(r'_iter_(\d+)\.safetensors$', path)
            if found and int(found.group(1)) <= good:
                exports.append((int(found.group(1)), path))
        for step, path in sorted(exports, reverse=True):
            if not non_finite(read_safetensors(path)[0]):
                return f'The last good export is {path} (after iteration {step}); later weights diverged.'
        return 'No trained weights were good enough to keep (it diverged at once).'


def batch_layout(runner) -> dict:
    """Processes x batch size x gradient accumulation: the images behind each optimizer step."""
    return dict(processes=get_world_size(), batch_size=int(runner.cfg.train_dataloader.batch_size),
                accumulation=int(runner.cfg.optim_wrapper.get('accumulative_counts', 1)))


def batch_change_message(before: dict, now: dict, iteration=None) -> str:
    def text(layout):
        n = layout['processes'] * layout['batch_size'] * layout['accumulation']
        return (f'{layout["processes"]} process(es) x batch {layout["batch_size"]} x accumulation '
                f'{layout["accumulation"]} = {n} image(s) per step')
    return (f'Resuming a checkpoint (iteration {iteration}) trained with {text(before)} with {text(now)}: the '
            'effective batch changes, so from here the loss curve and the final weights differ from those of an '
            'uninterrupted run (the learning rate is not rescaled, and the data order is replayed by steps, not '
            'images). To continue exactly, resume with the same processes, train_dataloader.batch_size and '
            'optim_wrapper.accumulative_counts.')


def check_checkpoint_matches(model, checkpoint: dict, filename: str | None = None) -> None:
    """A checkpoint of another method, layer list or base model fails here, before its optimizer state
    meets this model's (whose error would name neither)."""
    state = {k.removeprefix('module.'): v for k, v in (checkpoint.get('state_dict') or {}).items()}
    if not state or not hasattr(model, 'trainable_state_dict'):
        return
    expected = model.trainable_state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    shapes = [k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or shapes:
        raise InvalidValueError(f'checkpoint {filename or "(the latest of the work dir)"} was written by another '
                                f'model: missing {missing[:3]}, unexpected {unexpected[:3]}, other shapes '
                                f'{shapes[:3]}. Resume with the config (method, image_cross_layers, pretrained_model) '
                                'it was trained with, or start afresh in a new --work-dir.')


@HOOKS.register_module()
class ResumeStateHook(Hook):
    """Checkpoints that resume exactly and load weights-only.

    Stores torch's random state, so that a resumed run draws the same noise and timesteps as an
    uninterrupted one, and keeps the message hub free of pickled code (see ``engine/checkpoint.py``).
    Stores the batch layout too (processes, batch size, accumulation): resuming with another one
    warns that the effective batch, hence the loss curve and the result, change.
    """
    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['random_state'] = state
        checkpoint.setdefault('meta', {})['batch_layout'] = batch_layout(runner)
        encode_message_hub(checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        check_checkpoint_matches(unwrap(runner.model), checkpoint, runner.cfg.get('load_from'))
        before = (checkpoint.get('meta') or {}).get('batch_layout')
        if before and before != batch_layout(runner):
            runner.logger.warning(batch_change_message(before, batch_layout(runner), checkpoint['meta'].get('iter')))
        decode_message_hub(checkpoint)
        state = checkpoint.get('random_state')
        if state is None:
            return
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
