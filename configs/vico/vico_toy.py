# ViCo on the project's own toy-world base (data/toyworld_sd15: Stable Diffusion 1.5's architecture at
# 64 px, trained here on rendered scenes, docs/toyworld.md) with a concept that base never saw
# (data/toybench/star_robot: a navy-and-lime robot with one big eye and a pink star on its chest).
# Trains and samples in a few minutes on 2 CPU cores; the grid shows the concept in the world's scenes.
_base_ = ['./vico.py']

data_root = 'data/toybench'
concept_dir = 'star_robot'
initialize_token = 'robot'

model = dict(pretrained_model='{{fileDirname}}/../../data/toyworld_sd15', initialize_token=initialize_token)
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root, concept_dir=concept_dir, resolution=64))
train_cfg = dict(max_iters=400)
# Learning rates scaled to the toy base (docs/quality.md): weights inside the UNet train at the paper's
# lr x 5, the ratio of the toy base's pretraining lr (5e-4) to SD's (1e-4): the image cross-attention
# at 5e-5 (5e-3 x 1e-2) instead of 1e-5; the placeholder embedding keeps the paper's 5e-3.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'image_cross_attention': dict(lr_mult=1e-2)}))
default_hooks = dict(
    logger=dict(interval=50),  # 8 lines for the 400 iterations
    checkpoint=dict(interval=200), export=dict(interval=200),
    sample_grid=dict(interval=200, num_images=2, num_inference_steps=25,
                     prompts=['a photo of {} on the beach', 'a photo of {} in the snow', 'a photo of {} on the grass',
                              'a photo of {} at night', 'a photo of {} in a room', 'a photo of {} on a table',
                              'a photo of {} in the water', 'a photo of {} on a cobblestone street']))
