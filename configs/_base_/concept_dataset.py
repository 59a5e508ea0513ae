# The concept: a folder of 4-7 photos under data_root; captions from templates filled with the
# placeholder, chosen by learnable_property: 'object' (the photos show one thing: ImageNet-style
# "a photo of a {}", data/vico/imagenet_templates_small.txt) or 'style' (the images share a look:
# "a painting in the style of {}", data/vico/style_templates_small.txt); `templates=` overrides the file.
# Images: EXIF orientation, any mode -> RGB, bicubic resize to `resolution`, optional horizontal flip
# (off, as the original). A method config that changes concept_dir / placeholder / learnable_property
# re-states the keys built from them (python configs resolve them when parsed).
data_root = 'data/vico'
concept_dir = 'dog7'
placeholder = 'S*'
learnable_property = 'object'
train_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='ViCoConceptDataset',
        data_root=data_root,
        concept_dir=concept_dir,
        placeholder=placeholder,
        learnable_property=learnable_property,
        resolution=512,
        flip_prob=0.0))
