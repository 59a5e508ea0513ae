# Textual Inversion learning a style on Stable Diffusion 1.5 (Gal et al., arXiv 2208.01618, Sec. 4.3):
# the images share a look (here data/vico/linocut, made by tools/make_style_concept.py; yours:
# --cfg-options concept_dir=my_paintings), captions are style captions ("a painting in the style of
# S*", ...). Prompt with "... in the style of S*".
_base_ = ['./textual_inversion.py']

concept_dir = 'linocut'
initialize_token = 'painting'
learnable_property = 'style'

train_dataloader = dict(dataset=dict(concept_dir=concept_dir, learnable_property=learnable_property))
model = dict(initialize_token=initialize_token)
default_hooks = dict(sample_grid=dict(prompts=['a painting in the style of {}', 'a dog in the style of {}',
                                               'a house on the beach in the style of {}']))
