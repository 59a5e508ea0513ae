# The toy DreamBench (data/toybench: concepts the toy-world base never saw, docs/quality.md) on the
# project's own base (data/toyworld_sd15): the unpersonalized base (the class word in the prompt) and
# every method with its toy config's recipe (400 steps, batch 4, 64 px; each method's own learning
# rate), fixed seeds. Scored with CLIP-T / CLIP-I / DINO (the tiny offline backbones unless --clip /
# --dino) and the toy pixel figures (context, subject, subject-cos, copy). On 2 CPU cores: about an hour.
#   python tools/dreambench.py configs/dreambench/toybench.py --dreambench data/toybench --subjects all
_base_ = ['./dreambench.py']

methods = dict(
    base='configs/stable_diffusion/stable_diffusion_toy.py',
    textual_inversion='configs/textual_inversion/textual_inversion_toy.py',
    vico='configs/vico/vico_toy.py',
    dreambooth='configs/dreambooth/dreambooth_toy.py',
    dreambooth_lora='configs/dreambooth/dreambooth_lora_toy.py')

# the toy configs' own recipes, as they are
train_options = dict(base={}, vico={}, textual_inversion={}, dreambooth={}, dreambooth_lora={})

# the base model's gates sample this way (docs/toyworld.md)
evaluation = dict(num_images=4, num_inference_steps=25, guidance_scale=5.0, height=64, width=64, seed=0,
                  batch_size=25)

work_dir = 'work_dirs/toybench'
