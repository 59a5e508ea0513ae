# Aesthetic Gradients on the embedded tiny default; the tiny CLIP (data/tiny_clip, built by
# tools/make_aesthetic_embedding.py on first use) has the tiny SD's text encoder as its text tower.
_base_ = ['./aesthetic_gradients.py']

model = dict(pretrained_model='{{fileDirname}}/../../data/tiny_sd15')
