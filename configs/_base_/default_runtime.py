default_scope = 'mmagic_vico'
custom_imports = dict(imports=['mmagic_vico.datasets', 'mmagic_vico.engine', 'mmagic_vico.models'],
                      allow_failed_imports=False)

# A hub id or a local folder in the diffusers layout (model_index.json, unet/, vae/, text_encoder/,
# tokenizer/, scheduler/); switch with --cfg-options model.pretrained_model=/path/to/sd15
pretrained_model = 'stable-diffusion-v1-5/stable-diffusion-v1-5'

export_interval = 100
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=export_interval, by_epoch=False, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
vis_backends = [dict(type='LocalVisBackend')]  # TensorBoard is added by tools/train.py when installed
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
load_from = None
resume = False
