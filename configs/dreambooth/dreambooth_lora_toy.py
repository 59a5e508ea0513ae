# DreamBooth-LoRA on the toy-world base (see configs/dreambooth/dreambooth_toy.py).
_base_ = ['./dreambooth_toy.py']

model = dict(type='DreamBoothLoRA', rank=4, train_text_encoder=False)
optim_wrapper = dict(optimizer=dict(lr=1e-4))
