# DreamBooth-LoRA learning a style on the embedded tiny default (offline, CPU, seconds): see
# dreambooth_lora_style.py and dreambooth_tiny.py.
_base_ = ['./dreambooth_lora_style.py']

class_dir = 'work_dirs/class_images/tiny_painting'

model = dict(pretrained_model='{{fileDirname}}/../../data/tiny_sd15')
train_dataloader = dict(batch_size=2, dataset=dict(resolution=128, class_dir=class_dir))
train_cfg = dict(max_iters=100)
default_hooks = dict(checkpoint=dict(interval=50), export=dict(interval=50),
                     sample_grid=dict(interval=50, num_inference_steps=20, prompts=['a painting in the style of sks']),
                     class_images=dict(class_dir=class_dir, num_images=8, num_inference_steps=10, height=128,
                                       width=128))
