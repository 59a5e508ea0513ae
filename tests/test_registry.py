import os

import numpy as np
from mmengine import Config
from mmengine.registry import MODELS as ROOT_MODELS
from PIL import Image

from .conftest import REPO


def test_registry_is_a_child_scope_of_mmengine():
    from mmagic_vico.registry import MODELS
    assert MODELS.scope == 'mmagic_vico' and MODELS.parent is ROOT_MODELS


def test_readme_snippet(tiny_path, reference_image, tmp_path):
    from mmagic_vico.registry import MODELS
    from mmagic_vico.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(os.path.join(REPO, 'configs', 'vico', 'vico.py'))
    assert cfg.model.pretrained_model == 'stable-diffusion-v1-5/stable-diffusion-v1-5'
    assert (cfg.concept_dir, cfg.placeholder) == ('dog7', 'S*') and cfg.initialize_token
    cfg = Config.fromfile(os.path.join(REPO, 'configs', 'vico', 'vico_tiny.py'))
    vico = MODELS.build(cfg.model)
    state_dict = {k: v for k, v in vico.state_dict().items()
                  if 'image_cross_attention' in k or 'trainable_embeddings' in k}
    vico.load_state_dict(state_dict, strict=False)
    p = tmp_path / 'ref.png'
    reference_image.save(p)
    out = vico.infer(prompt=['A photo of S*', 'A photo of S* on the beach'], image_reference=Image.open(p),
                     seed=123, num_images_per_prompt=2, num_inference_steps=2, height=64, width=64)['samples']
    assert len(out) == 4 and all(isinstance(s, Image.Image) for s in out)
    assert np.asarray(out[0]).shape == (64, 64, 3)
