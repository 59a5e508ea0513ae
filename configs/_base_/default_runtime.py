default_scope = 'mmagic_vico'
custom_imports = dict(imports=['mmagic_vico.datasets', 'mmagic_vico.engine', 'mmagic_vico.models'],
                      allow_failed_imports=False)

# A hub id or a local folder in the diffusers layout (model_index.json, unet/, vae/, text_encoder/,
# tokenizer/, scheduler/); switch with --cfg-options model.pretrained_model=/path/to/sd15
pretrained_model = 'stable-diffusion-v1-5/stable-diffusion-v1-5'

# AdamW on the trainable parameters only (the constructor is mmengine's, without a warning per frozen
# tensor); each method sets its lr (and paramwise_cfg)
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='FrozenBaseOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-2))

# Every `interval` iterations and at the end: a checkpoint (trainable parameters + optimizer; the lr is
# constant, so no parameter scheduler to save), the exported weights, and a sample grid of fixed prompts
# ({} is the placeholder). A NaN / infinite loss stops training with the last good weights exported.
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=100, by_epoch=False, max_keep_ckpts=3,
                    save_param_scheduler=False),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    export=dict(type='ExportWeightsHook', interval=100),
    sample_grid=dict(type='SampleGridHook', interval=100, num_images=2, num_inference_steps=50,
                     prompts=['a photo of {}', 'a photo of {} on the beach', 'a {} in the snow']),
    resume_state=dict(type='ResumeStateHook'),
    nonfinite_loss=dict(type='NonFiniteLossHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
vis_backends = [dict(type='LocalVisBackend')]  # TensorBoard is added by tools/train.py when installed
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
load_from = None
resume = False
