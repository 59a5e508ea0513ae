# The DreamBench table (the protocol of DreamBooth, Ruiz et al., arXiv 2208.12242): every method trained
# on every subject with its own config, then 25 prompts x 4 images per subject scored with CLIP-T, CLIP-I
# and DINO. Read by tools/dreambench.py (its flags override `evaluation`; --methods picks some `methods`).

# method name -> its training config (relative to the repository); 'base': the base model as it is
methods = dict(
    base='configs/stable_diffusion/stable_diffusion.py',
    vico='configs/vico/vico.py',
    textual_inversion='configs/textual_inversion/textual_inversion.py',
    dreambooth='configs/dreambooth/dreambooth.py',
    dreambooth_lora='configs/dreambooth/dreambooth_lora.py')

# --cfg-options of each method's training, besides the subject's own fields (photos, class noun)
train_options = dict(base={}, vico={}, textual_inversion={}, dreambooth={}, dreambooth_lora={})

# None: each config's own base model; else one folder for every method (e.g. /data/sd15)
pretrained_model = None

# initialize_token must be one CLIP token: a stand-in for the class nouns of DreamBench that are not
initialize_tokens = {'stuffed animal': 'plush'}

# the protocol's sampling; batch_size (images per infer call) changes speed and memory, not the images
evaluation = dict(num_images=4, num_inference_steps=50, guidance_scale=7.5, height=None, width=None, seed=0,
                  batch_size=8)

work_dir = 'work_dirs/dreambench'
