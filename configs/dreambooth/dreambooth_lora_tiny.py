# DreamBooth-LoRA on the embedded tiny default (offline, CPU, seconds).
_base_ = ['./dreambooth_tiny.py']

model = dict(type='DreamBoothLoRA', rank=4, train_text_encoder=False)
optim_wrapper = dict(optimizer=dict(lr=1e-4))
