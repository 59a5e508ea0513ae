# ViCo on Stable Diffusion 1.5 (Hao et al., arXiv 2306.00971).
# The concept: a folder of 4-7 photos under data_root, the placeholder that stands for it in prompts,
# and one CLIP token naming its class (its embedding initialises the placeholder's).
data_root = 'data/vico'
concept_dir = 'dog7'
placeholder = 'S*'
initialize_token = 'dog'

default_scope = 'mmagic_vico'
custom_imports = dict(imports=['mmagic_vico.models'], allow_failed_imports=False)

# A hub id or a local folder in the diffusers layout (model_index.json, unet/, vae/, text_encoder/,
# tokenizer/, scheduler/); switch with --cfg-options model.pretrained_model=/path/to/sd15
pretrained_model = 'stable-diffusion-v1-5/stable-diffusion-v1-5'

model = dict(
    type='ViCo',
    pretrained_model=pretrained_model,
    placeholder=placeholder,
    initialize_token=initialize_token,
    # one flag per text transformer layer, down(6) -> mid(1) -> up(9): image attention after ids 8, 10, 12, 14
    image_cross_layers=[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0],
    reg_loss_weight=5e-4,
    fast_path=True,  # exact speed-ups; False: the straightforward path (for comparison)
    gradient_checkpointing=False,  # True: recompute the frozen UNet in the backward pass, less memory
    frozen_dtype=None,  # 'bf16' / 'fp16': hold the frozen base in half precision (trainable stays fp32)
    data_preprocessor=dict(type='ViCoDataPreprocessor'))

# ---------------------------------------------------------------- data
resolution = 512
train_pipeline = [
    dict(type='LoadConceptImage'),  # EXIF orientation; RGBA/L/CMYK/16-bit -> RGB
    dict(type='Resize', scale=(resolution, resolution), keep_ratio=False, interpolation='bicubic', backend='pillow'),
    # dict(type='RandomFlip', prob=0.5, direction='horizontal'),  # off, as in the original
    dict(type='PackConceptImage'),
]
train_dataloader = dict(
    batch_size=1,  # per process; the original trains 1 x 4 GPUs
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='ViCoConceptDataset',
        data_root=data_root,
        concept_dir=concept_dir,
        placeholder=placeholder,
        templates='data/vico/imagenet_templates_small.txt',
        pipeline=train_pipeline))

# ---------------------------------------------------------------- optimisation
# lr 5e-3 for the placeholder embedding, 5e-3 x 2e-3 = 1e-5 for the image cross-attention
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='FrozenBaseOptimWrapperConstructor',  # mmengine's, without a warning per frozen tensor
    optimizer=dict(type='AdamW', lr=5e-3, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={
        'trainable_embeddings': dict(lr_mult=1.0),
        'image_cross_attention': dict(lr_mult=2e-3),
    }))
# True: the original's embedding lr, scaled by processes x batch size x accumulation
scale_embedding_lr = False
train_cfg = dict(type='IterBasedTrainLoop', max_iters=400)

# ---------------------------------------------------------------- hooks and runtime
export_interval = 100
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=export_interval, by_epoch=False, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [
    dict(type='ViCoExportHook', interval=export_interval),
    dict(type='ViCoVisualizationHook', interval=export_interval, num_images=2, num_inference_steps=50,
         prompts=['a photo of {}', 'a photo of {} on the beach', 'a {} in the snow']),
    dict(type='ResumeStateHook'),
]
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
vis_backends = [dict(type='LocalVisBackend')]  # add dict(type='TensorboardVisBackend') with tensorboard installed
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
load_from = None
resume = False
