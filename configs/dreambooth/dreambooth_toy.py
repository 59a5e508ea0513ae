# DreamBooth on the toy-world base (see configs/vico/vico_toy.py): the same steps and batch as ViCo's
# (docs/quality.md), with prior preservation on 64 class images the base makes once; lr: the SD
# config's 5e-6 x 5, the ratio of the toy base's pretraining lr (5e-4) to SD's (1e-4).
_base_ = ['./dreambooth.py']

data_root = 'data/toybench'
concept_dir = 'star_robot'
class_noun = 'robot'
class_dir = 'work_dirs/class_images/toy_robot'

model = dict(pretrained_model='{{fileDirname}}/../../data/toyworld_sd15', class_prompt='a photo of ' + class_noun,
             gradient_checkpointing=False)
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root, concept_dir=concept_dir, resolution=64,
                                                   caption='a photo of {} ' + class_noun, class_dir=class_dir))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2.5e-5))
train_cfg = dict(max_iters=400)
default_hooks = dict(
    checkpoint=dict(interval=200), export=dict(interval=400),
    sample_grid=dict(interval=200, num_images=2, num_inference_steps=25,
                     prompts=['a photo of sks robot on the beach', 'a photo of sks robot in the snow']),
    class_images=dict(class_dir=class_dir, num_images=64, num_inference_steps=25, height=64, width=64))
