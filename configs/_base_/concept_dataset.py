# The concept: a folder of 4-7 photos under data_root; captions from ImageNet-style templates
# filled with the placeholder. A method config that changes concept_dir / placeholder / resolution
# re-states the keys built from them (python configs resolve them when parsed).
data_root = 'data/vico'
concept_dir = 'dog7'
placeholder = 'S*'
resolution = 512
train_pipeline = [
    dict(type='LoadConceptImage'),  # EXIF orientation; RGBA/L/CMYK/16-bit -> RGB
    dict(type='Resize', scale=(resolution, resolution), keep_ratio=False, interpolation='bicubic', backend='pillow'),
    # dict(type='RandomFlip', prob=0.5, direction='horizontal'),  # off, as in the original
    dict(type='PackConceptImage'),
]
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
        templates='data/vico/imagenet_templates_small.txt',
        pipeline=train_pipeline))
