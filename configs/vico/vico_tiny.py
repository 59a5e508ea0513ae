# The embedded default: ViCo on a tiny, offline Stable Diffusion 1.5 of the same architecture
# (random weights, built into data/tiny_sd15 on first use). Runs anywhere in minutes on a CPU.
_base_ = ['./vico.py']

concept_dir = 'tiny_toy'  # rendered by tools/make_tiny_concept.py and shipped in data/vico
initialize_token = 'toy'

model = dict(
    pretrained_model='{{fileDirname}}/../../data/tiny_sd15',
    initialize_token=initialize_token)
