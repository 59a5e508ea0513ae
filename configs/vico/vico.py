# ViCo on Stable Diffusion 1.5 (Hao et al., arXiv 2306.00971).
# The concept: a folder of 4-7 photos under data_root, the placeholder that stands for it in prompts,
# and one CLIP token naming its class (its embedding initialises the placeholder's).
data_root = 'data/vico'
concept_dir = 'dog7'
placeholder = 'S*'
initialize_token = 'dog'

default_scope = 'mmagic_vico'
custom_imports = dict(imports=['mmagic_vico.models'], allow_failed_imports=False)

# A hub id or a local folder in the diffusers layout (model_index.json, unet/, vae/, text_encoder/,
# tokenizer/, scheduler/); switch with --cfg-options model.pretrained_model=/path/to/sd15
pretrained_model = 'stable-diffusion-v1-5/stable-diffusion-v1-5'

model = dict(
    type='ViCo',
    pretrained_model=pretrained_model,
    placeholder=placeholder,
    initialize_token=initialize_token,
    # one flag per text transformer layer, down(6) -> mid(1) -> up(9): image attention after ids 8, 10, 12, 14
    image_cross_layers=[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0],
    reg_loss_weight=5e-4,
    data_preprocessor=dict(type='ViCoDataPreprocessor'))
