import os

import pytest
import torch
from mmengine import Config

from mmagic_vico.convert.formats import CONVERSIONS, FORMATS
from mmagic_vico.models.sd_loading import load_stable_diffusion
from mmagic_vico.registry import MODELS
from tools.convert_weights import main

from ..conftest import REPO

DB_TINY = os.path.join(REPO, 'configs', 'dreambooth', 'dreambooth_tiny.py')


def test_help_lists_every_format_and_conversion(capsys):
    with pytest.raises(SystemExit):
        main(['--help'])
    text = capsys.readouterr().out
    assert all(f'  {name} ' in text for name in FORMATS)
    assert all(f'{a} -> {b}' in text for a, b in CONVERSIONS)


def test_a_pair_without_conversion_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(['kohya', 'vico', str(tmp_path / 'x'), str(tmp_path / 'y')])
    assert info.value.code == 2 and 'no conversion from kohya to vico' in capsys.readouterr().err


def test_dreambooth_weights_become_a_compvis_file_and_a_diffusers_folder(tiny_cfg, tiny_path, tmp_path):
    db = MODELS.build(Config.fromfile(DB_TINY).model)
    with torch.no_grad():
        for p in db.unet.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # as if fine-tuned
    weights = db.save_weights(str(tmp_path / 'dreambooth_weights.safetensors'))  # names its base model
    single = main(['dreambooth', 'compvis', weights, str(tmp_path / 'db.safetensors')])
    folder = main(['compvis', 'diffusers', single, str(tmp_path / 'db')])
    parts = load_stable_diffusion(folder)
    for name in ('unet', 'vae', 'text_encoder'):
        ours, theirs = getattr(db, name).state_dict(), parts[name].state_dict()
        assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours), name
    with pytest.raises(ValueError, match="holds ViCo weights, not DreamBooth's"):
        main(['dreambooth', 'compvis', MODELS.build(tiny_cfg.model).save_weights(str(tmp_path / 'v.safetensors')),
              str(tmp_path / 'v_single.safetensors')])


def test_outputs_of_the_wrong_kind_fail_before_the_input_is_read(tmp_path):
    """A file format into a folder, a folder format onto a file: named before anything is read (the input
    here is not even weights: reading it would fail otherwise)."""
    from mmagic_vico.utils.errors import InvalidValueError
    source = tmp_path / 'in.safetensors'
    source.write_bytes(b'not read')
    with pytest.raises(InvalidValueError, match=r"OUTPUT '.*out' is a folder; give a file name"):
        (tmp_path / 'out').mkdir()
        main(['embedding', 'a1111', str(source), str(tmp_path / 'out')])
    taken = tmp_path / 'taken'
    taken.write_text('a file')
    with pytest.raises(InvalidValueError, match=r"OUTPUT '.*taken' is a file, not a folder"):
        main(['compvis', 'diffusers', str(source), str(taken)])
