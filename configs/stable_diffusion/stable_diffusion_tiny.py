# The embedded tiny default's base as it is (random weights: the code paths only).
_base_ = ['./stable_diffusion.py']

model = dict(pretrained_model='{{fileDirname}}/../../data/tiny_sd15')
