# Stable Diffusion 1.5 as it is: nothing trains, no concept is learned. DreamBench's unpersonalized row
# (its prompts name the class alone: "a dog in the snow"); sample with tools/infer.py.
_base_ = ['../_base_/default_runtime.py']

model = dict(type='StableDiffusion', pretrained_model={{_base_.pretrained_model}})
