# The embedded default: ViCo on a tiny, offline Stable Diffusion 1.5 of the same architecture
# (random weights, built into data/tiny_sd15 on first use) and a concept the project renders itself
# (data/vico/tiny_toy, tools/make_tiny_concept.py). Trains and samples in minutes on a CPU.
_base_ = ['./vico.py']

concept_dir = 'tiny_toy'
initialize_token = 'toy'
resolution = 128
export_interval = 50

model = dict(pretrained_model='{{fileDirname}}/../../data/tiny_sd15', initialize_token=initialize_token)

train_pipeline = [
    dict(type='LoadConceptImage'),
    dict(type='Resize', scale=(resolution, resolution), keep_ratio=False, interpolation='bicubic', backend='pillow'),
    dict(type='PackConceptImage'),
]
train_dataloader = dict(batch_size=2, dataset=dict(concept_dir=concept_dir, pipeline=train_pipeline))
train_cfg = dict(max_iters=100)
default_hooks = dict(checkpoint=dict(interval=export_interval), logger=dict(interval=10))
custom_hooks = [
    dict(type='ExportWeightsHook', interval=export_interval),
    dict(type='SampleGridHook', interval=export_interval, num_images=2, num_inference_steps=20,
         prompts=['a photo of {}', 'a photo of {} on the beach']),
    dict(type='ResumeStateHook'),
]
