"""Training hooks: export the trainable weights, sample a grid, keep random state across resume."""
import os
import shutil

import numpy as np
import torch
from mmengine.dist import barrier, is_main_process, master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmagic_vico.models.dreambooth.class_images import generate_class_images
from mmagic_vico.registry import HOOKS
from .checkpoint import decode_message_hub, encode_message_hub
from mmagic_vico.utils.image import make_grid


def unwrap(model):
    return model.module if is_model_wrapper(model) else model


class EveryNAndEndHook(Hook):
    """Calls :meth:`run` every ``interval`` iterations and once more at the end if it was not the last."""
    priority = 'LOW'

    def __init__(self, interval: int = 100):
        if interval < 1:
            raise ValueError(f'{type(self).__name__} interval={interval} must be >= 1.')
        self.interval = interval

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
        model = unwrap(runner.model)
        path = os.path.join(runner.work_dir, f'{model.weights_name}_iter_{step}.safetensors')
        model.save_weights(path)
        latest = os.path.join(runner.work_dir, f'{model.weights_name}.safetensors')
        shutil.copyfile(path, latest + '.tmp')
        os.replace(latest + '.tmp', latest)
        model.export_extras(runner.work_dir)
        runner.logger.info(f'exported the trainable weights to {path} and {latest}')


@HOOKS.register_module()
class SampleGridHook(EveryNAndEndHook):
    """Every ``interval`` iterations and at the end, sample fixed prompts (with a fixed reference image
    for methods that take one: ``model.needs_reference``).

    The grid (rows: prompts) goes to ``work_dir/vis/iter_{n}.png`` and to the visualizer's backends.
    Sampling runs on the fp32 trainable weights themselves: nothing is cast and cast back.
    """

    def __init__(self, interval: int = 100, prompts=('a photo of {}',), reference: str | None = None,
                 num_images: int = 2, num_inference_steps: int = 50, guidance_scale: float = 7.5,
                 height: int | None = None, width: int | None = None, seed: int = 0):
        super().__init__(interval)
        self.prompts, self.reference = list(prompts), reference
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
        grid = make_grid(samples, self.kwargs['num_images_per_prompt'])
        path = os.path.join(runner.work_dir, 'vis', f'iter_{step}.png')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        grid.save(path)
        runner.visualizer.add_image('samples', np.asarray(grid), step=step)
        runner.logger.info(f'saved samples of {prompts} to {path}')


@HOOKS.register_module()
class ClassImagesHook(Hook):
    """Before training, generate the prior-preservation class images with the still-frozen model
    (DreamBooth): once, cached in ``class_dir``, resumed if interrupted; other ranks wait."""
    priority = 'VERY_HIGH'

    def __init__(self, class_dir: str, num_images: int = 100, batch_size: int = 4, num_inference_steps: int = 50,
                 guidance_scale: float = 7.5, height: int | None = None, width: int | None = None, seed: int = 0):
        if num_images < 1:
            raise ValueError(f'ClassImagesHook num_images={num_images} must be >= 1 (DreamBooth uses 200).')
        self.class_dir, self.num_images = class_dir, num_images
        self.kwargs = dict(batch_size=batch_size, num_inference_steps=num_inference_steps,
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
class ResumeStateHook(Hook):
    """Checkpoints that resume exactly and load weights-only.

    Stores torch's random state, so that a resumed run draws the same noise and timesteps as an
    uninterrupted one, and keeps the message hub free of pickled code (see ``engine/checkpoint.py``).
    """
    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['random_state'] = state
        encode_message_hub(checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        decode_message_hub(checkpoint)
        state = checkpoint.get('random_state')
        if state is None:
            return
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
