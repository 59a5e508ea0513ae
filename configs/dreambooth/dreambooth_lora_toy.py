# DreamBooth-LoRA on the toy-world base (see configs/dreambooth/dreambooth_toy.py): LoRA's lr 1e-4 x 5,
# the ratio of the toy base's pretraining lr to SD's, as every lr of weights inside the UNet here.
_base_ = ['./dreambooth_toy.py']

model = dict(type='DreamBoothLoRA', rank=4, train_text_encoder=False)
optim_wrapper = dict(optimizer=dict(lr=5e-4))
