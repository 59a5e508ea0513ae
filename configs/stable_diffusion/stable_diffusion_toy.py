# The project's own toy-world base as it is (data/toyworld_sd15, docs/toyworld.md): the unpersonalized
# row of the toy DreamBench (configs/dreambench/toybench.py).
_base_ = ['./stable_diffusion.py']

model = dict(pretrained_model='{{fileDirname}}/../../data/toyworld_sd15')
