# DreamBooth on Stable Diffusion 1.5 (Ruiz et al., arXiv 2208.12242): fine-tune the UNet on
# "a photo of sks <class>" with prior preservation (class images made once by the frozen model).
_base_ = ['../_base_/concept_dataset.py', '../_base_/default_runtime.py']

concept_dir = 'dog7'
identifier = 'sks'  # a rare existing word; no token is added
class_noun = 'dog'
class_dir = 'work_dirs/class_images/dog'  # cached across runs of the same class
learnable_property = 'object'  # the caption below is an object's (style: dreambooth_lora_style.py)

train_dataloader = dict(dataset=dict(concept_dir=concept_dir, placeholder=identifier, with_reference=False,
                                     learnable_property=learnable_property, caption='a photo of {} ' + class_noun,
                                     class_dir=class_dir))

model = dict(
    type='DreamBooth',
    pretrained_model={{_base_.pretrained_model}},
    class_prompt='a photo of ' + class_noun,
    identifier=identifier,
    prior_loss_weight=1.0,
    train_text_encoder=False,
    gradient_checkpointing=True,
    data_preprocessor=dict(type='ViCoDataPreprocessor'))

# 'AdamW8bit' saves memory on a GPU with bitsandbytes (falls back to AdamW with a warning without it)
optim_wrapper = dict(optimizer=dict(type='AdamW8bit', lr=5e-6))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=400)

default_hooks = dict(
    checkpoint=dict(interval=400), export=dict(interval=400),
    sample_grid=dict(interval=200, prompts=['a photo of sks dog', 'a photo of sks dog on the beach']),
    class_images=dict(type='ClassImagesHook', class_dir=class_dir, num_images=200))
