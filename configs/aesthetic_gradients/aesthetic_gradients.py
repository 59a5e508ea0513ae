# Aesthetic Gradients on Stable Diffusion 1.5 (Gallego, arXiv 2209.12330): nothing trains. Make the
# embedding of a folder with CLIP ViT-L/14 (SD 1.5's CLIP), then sample:
#   python tools/make_aesthetic_embedding.py my_style/ work_dirs/my_style.safetensors --clip /path/to/clip-vit-large-patch14
#   python tools/infer.py configs/aesthetic_gradients/aesthetic_gradients.py --prompt "a cat" \
#       --aesthetic-embedding work_dirs/my_style.safetensors --aesthetic-steps 10
# The same --aesthetic-* flags work with any trained concept's config (ViCo, Textual Inversion, DreamBooth).
_base_ = ['../_base_/default_runtime.py']

model = dict(
    type='AestheticGradients',
    pretrained_model={{_base_.pretrained_model}},
    aesthetic_embedding=None,
    aesthetic_steps=0,  # the original's defaults: off until asked for
    aesthetic_lr=1e-4,
    aesthetic_clip=None)
