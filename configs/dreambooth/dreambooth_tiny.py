# DreamBooth on the embedded tiny default (offline, CPU, seconds): see configs/vico/vico_tiny.py.
_base_ = ['./dreambooth.py']

concept_dir = 'tiny_toy'
class_dir = 'work_dirs/class_images/tiny_toy'

model = dict(pretrained_model='{{fileDirname}}/../../data/tiny_sd15', class_prompt='a photo of toy')
train_dataloader = dict(batch_size=2, dataset=dict(concept_dir=concept_dir, resolution=128, caption='a photo of {} toy',
                                                   class_dir=class_dir))
train_cfg = dict(max_iters=100)
default_hooks = dict(checkpoint=dict(interval=50), export=dict(interval=50),
                     sample_grid=dict(interval=50, num_inference_steps=20, prompts=['a photo of sks toy']),
                     class_images=dict(class_dir=class_dir, num_images=8, num_inference_steps=10, height=128,
                                       width=128))
