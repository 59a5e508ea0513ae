# The DreamBench sweep on the embedded tiny default (random weights, offline, CPU): every code path of the
# table in minutes; the scores of a random model mean nothing. Short schedules, small images, 1 image per prompt.
_base_ = ['./dreambench.py']

methods = dict(
    base='configs/stable_diffusion/stable_diffusion_tiny.py',
    vico='configs/vico/vico_tiny.py',
    textual_inversion='configs/textual_inversion/textual_inversion_tiny.py',
    dreambooth='configs/dreambooth/dreambooth_tiny.py',
    dreambooth_lora='configs/dreambooth/dreambooth_lora_tiny.py')

_short = {'train_cfg.max_iters': 20, 'default_hooks.checkpoint.interval': 10, 'default_hooks.export.interval': 10,
          'default_hooks.sample_grid.interval': 20, 'default_hooks.sample_grid.num_inference_steps': 5,
          'default_hooks.sample_grid.num_images': 1, 'default_hooks.sample_grid.height': 64,
          'default_hooks.sample_grid.width': 64}
_class_images = {'default_hooks.class_images.num_images': 4, 'default_hooks.class_images.num_inference_steps': 5,
                 'default_hooks.class_images.height': 64, 'default_hooks.class_images.width': 64}
train_options = dict(vico=_short, textual_inversion=_short, dreambooth={**_short, **_class_images},
                     dreambooth_lora={**_short, **_class_images})

evaluation = dict(num_images=1, num_inference_steps=10, height=64, width=64, batch_size=25)

work_dir = 'work_dirs/dreambench_tiny'
