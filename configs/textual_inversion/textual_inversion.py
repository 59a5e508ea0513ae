# Textual Inversion on Stable Diffusion 1.5 (Gal et al., arXiv 2208.01618): only the placeholder's
# embedding trains. Defaults of diffusers' example: lr 5e-4 at batch 4, 3000 steps.
_base_ = ['../_base_/concept_dataset.py', '../_base_/default_runtime.py']

concept_dir = 'dog7'
placeholder = 'S*'
initialize_token = 'dog'
learnable_property = 'object'  # 'style': configs/textual_inversion/textual_inversion_style.py

train_dataloader = dict(batch_size=4, dataset=dict(concept_dir=concept_dir, placeholder=placeholder,
                                                   learnable_property=learnable_property, with_reference=False))

model = dict(
    type='TextualInversion',
    pretrained_model={{_base_.pretrained_model}},
    placeholder=placeholder,
    initialize_token=initialize_token,
    num_vectors=1,  # vectors the placeholder stands for; exported as S*, S*_1, ... for diffusers
    gradient_checkpointing=False,
    frozen_dtype=None,
    data_preprocessor=dict(type='ViCoDataPreprocessor'))

optim_wrapper = dict(optimizer=dict(lr=5e-4))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=3000)

default_hooks = dict(checkpoint=dict(interval=500), export=dict(interval=500), sample_grid=dict(interval=500))
