# DreamBooth-LoRA learning a style on Stable Diffusion 1.5: the images share a look (here
# data/vico/linocut, made by tools/make_style_concept.py; yours: --cfg-options concept_dir=my_paintings),
# captions are style captions with the identifier ("a painting in the style of sks", ...) instead of
# DreamBooth's fixed "a photo of sks <class>"; prior preservation keeps plain "a painting" as the
# frozen model paints it. Prompt with "... in the style of sks".
_base_ = ['./dreambooth_lora.py']

concept_dir = 'linocut'
class_noun = 'painting'
class_dir = 'work_dirs/class_images/painting'  # cached across runs of the same class
learnable_property = 'style'

train_dataloader = dict(dataset=dict(concept_dir=concept_dir, learnable_property=learnable_property, caption=None,
                                     class_dir=class_dir))
model = dict(class_prompt='a ' + class_noun)
default_hooks = dict(
    sample_grid=dict(prompts=['a painting in the style of sks', 'a dog in the style of sks']),
    class_images=dict(class_dir=class_dir))
