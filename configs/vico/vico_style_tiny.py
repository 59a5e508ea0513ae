# ViCo learning a style on the embedded tiny default (offline, CPU, seconds): see vico_style.py and vico_tiny.py.
_base_ = ['./vico_style.py']

model = dict(pretrained_model='{{fileDirname}}/../../data/tiny_sd15')
train_dataloader = dict(batch_size=2, dataset=dict(resolution=128))
train_cfg = dict(max_iters=100)
default_hooks = dict(checkpoint=dict(interval=50), export=dict(interval=50),
                     sample_grid=dict(interval=50, num_inference_steps=20,
                                      prompts=['a painting in the style of {}', 'a dog in the style of {}']))
