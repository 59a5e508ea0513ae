"""Ship a trained toy-world pipeline: the same diffusers folder with fp16 weights (half the bytes).

Loading it with ``from_pretrained`` (no ``torch_dtype``) gives float32 modules, as for SD 1.5's
fp16 variant; the round trip fp32 -> fp16 -> fp32 is what every sample of the shipped base sees.
"""
import json
import os
import shutil
import tempfile

import torch

COMPONENTS = ('unet', 'vae', 'text_encoder')


def export_fp16(src: str, dst: str) -> str:
    """Copy the diffusers folder ``src`` to ``dst`` with its model weights in fp16 (atomic: staged, renamed)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel
    loaders = dict(unet=UNet2DConditionModel, vae=AutoencoderKL, text_encoder=CLIPTextModel)
    parent = os.path.dirname(os.path.abspath(dst))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.toyworld-', dir=parent)
    try:
        for name in os.listdir(src):
            if name not in COMPONENTS:
                copy = shutil.copytree if os.path.isdir(os.path.join(src, name)) else shutil.copy2
                copy(os.path.join(src, name), os.path.join(staging, name))
        for name in COMPONENTS:
            model = loaders[name].from_pretrained(os.path.join(src, name)).to(torch.float16)
            model.save_pretrained(os.path.join(staging, name), safe_serialization=True)
        for name in COMPONENTS:
            _tidy_config(os.path.join(staging, name, 'config.json'))
        if os.path.exists(dst):
            shutil.rmtree(dst)
        os.rename(staging, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dst


def _tidy_config(config_path: str) -> None:
    """Leave out the folder it was copied from (this machine's, not the reader's), and name float32: transformers 5
    loads a model in the dtype its config names (diffusers in float32), so the text encoder would come back in
    half precision beside a float32 UNet."""
    with open(config_path, encoding='utf-8') as f:
        config = json.load(f)
    config.pop('_name_or_path', None)
    if 'dtype' in config or 'torch_dtype' in config:  # transformers' configs only
        config['dtype'] = 'float32'
    with open(config_path, 'w', encoding='utf-8') as f:
        json.dump(config, f, indent=2, sort_keys=True)
