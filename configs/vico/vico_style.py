# ViCo learning a style, not an object, on Stable Diffusion 1.5: the images share a look (here
# data/vico/linocut, toy scenes in one printmaking style made by tools/make_style_concept.py; yours:
# --cfg-options concept_dir=my_paintings), captions are style captions ("a painting in the style of
# S*", ...), prompts put S* after "in the style of".
# What the image attention looks at: a reference image of the style as it is (a random other image of
# the set, as for an object), with the object mask off (object_mask=False: every reference patch). A
# style covers the whole picture (strokes, palette, outlines of the background as much as of a subject);
# Otsu's threshold on the placeholder's map would keep an arbitrary part of it. The authors' style
# variant (haoosz/ViCo, ldm/data/personalized_style.py) is Textual Inversion's style dataset carried
# over: style captions and the init word 'painting', but no reference image, which their ViCo model
# needs, so it says nothing about the image attention; its captions and init word are followed here.
# The attention regulariser stays; horizontal flips stay off (stroke and hatching directions are part
# of a style).
_base_ = ['./vico.py']

concept_dir = 'linocut'
initialize_token = 'painting'
learnable_property = 'style'

train_dataloader = dict(dataset=dict(concept_dir=concept_dir, learnable_property=learnable_property))
model = dict(initialize_token=initialize_token, object_mask=False)
default_hooks = dict(sample_grid=dict(prompts=['a painting in the style of {}', 'a dog in the style of {}',
                                               'a house on the beach in the style of {}']))
