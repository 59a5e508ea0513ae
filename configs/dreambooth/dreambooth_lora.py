# DreamBooth-LoRA on Stable Diffusion 1.5 (diffusers' train_dreambooth_lora): rank-4 adapters on the
# UNet's attention projections; exports pytorch_lora_weights.safetensors for load_lora_weights.
_base_ = ['./dreambooth.py']

model = dict(type='DreamBoothLoRA', rank=4, train_text_encoder=False)
optim_wrapper = dict(optimizer=dict(lr=1e-4))
