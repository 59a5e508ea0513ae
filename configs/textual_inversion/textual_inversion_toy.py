# Textual Inversion on the toy-world base (see configs/vico/vico_toy.py): the toy DreamBench's recipe,
# the same steps and batch as ViCo's (docs/quality.md); lr: the diffusers example's 5e-4.
_base_ = ['./textual_inversion.py']

data_root = 'data/toybench'
concept_dir = 'star_robot'
initialize_token = 'robot'

model = dict(pretrained_model='{{fileDirname}}/../../data/toyworld_sd15', initialize_token=initialize_token)
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root, concept_dir=concept_dir, resolution=64))
train_cfg = dict(max_iters=400)
default_hooks = dict(
    checkpoint=dict(interval=200), export=dict(interval=200),
    sample_grid=dict(interval=200, num_images=2, num_inference_steps=25,
                     prompts=['a photo of {} on the beach', 'a photo of {} in the snow', 'a photo of {} at night',
                              'a photo of {} in the water']))
