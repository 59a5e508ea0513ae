# The embedded default: ViCo on a tiny, offline Stable Diffusion 1.5 of the same architecture
# (random weights, built into data/tiny_sd15 on first use) and a concept the project renders itself
# (data/vico/tiny_toy, tools/make_tiny_concept.py). Trains and samples in minutes on a CPU.
_base_ = ['./vico.py']

concept_dir = 'tiny_toy'
initialize_token = 'toy'

model = dict(pretrained_model='{{fileDirname}}/../../data/tiny_sd15', initialize_token=initialize_token)
train_dataloader = dict(batch_size=2, dataset=dict(concept_dir=concept_dir, resolution=128))
train_cfg = dict(max_iters=100)
default_hooks = dict(checkpoint=dict(interval=50), export=dict(interval=50),
                     sample_grid=dict(interval=50, num_inference_steps=20, prompts=['a photo of {}', 'a {} on the beach']))
