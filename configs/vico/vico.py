# ViCo on Stable Diffusion 1.5 (Hao et al., arXiv 2306.00971).
# The concept: a folder of 4-7 photos under data_root, the placeholder that stands for it in prompts,
# one CLIP token naming its class (its embedding initialises the placeholder's), and what the photos
# teach: 'object' (this config) or 'style' (configs/vico/vico_style.py).
_base_ = ['../_base_/concept_dataset.py', '../_base_/default_runtime.py']

concept_dir = 'dog7'
placeholder = 'S*'
initialize_token = 'dog'
learnable_property = 'object'

train_dataloader = dict(dataset=dict(concept_dir=concept_dir, placeholder=placeholder,
                                     learnable_property=learnable_property))

model = dict(
    type='ViCo',
    pretrained_model={{_base_.pretrained_model}},
    placeholder=placeholder,
    initialize_token=initialize_token,
    # one flag per text transformer layer, down(6) -> mid(1) -> up(9): image attention after ids 8, 10, 12, 14
    # (the preset 'original'); 'mmagic': mmagic's port's layers, only to load weights trained with mmagic
    image_cross_layers=[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0],
    reg_loss_weight=5e-4,
    object_mask=True,  # the image attention sees the reference's object patches (Otsu); False: every patch
    fast_path=True,  # exact speed-ups; False: the straightforward path (for comparison)
    gradient_checkpointing=False,  # True: recompute the frozen UNet in the backward pass, less memory
    frozen_dtype=None,  # 'bf16' / 'fp16': hold the frozen base in half precision (trainable stays fp32)
    data_preprocessor=dict(type='ViCoDataPreprocessor'))

# lr 5e-3 for the placeholder embedding, 5e-3 x 2e-3 = 1e-5 for the image cross-attention
optim_wrapper = dict(
    optimizer=dict(lr=5e-3),
    paramwise_cfg=dict(custom_keys={
        'trainable_embeddings': dict(lr_mult=1.0),
        'image_cross_attention': dict(lr_mult=2e-3),
    }))
# True: the original's embedding lr, scaled by processes x batch size x accumulation
scale_embedding_lr = False
train_cfg = dict(type='IterBasedTrainLoop', max_iters=400)
