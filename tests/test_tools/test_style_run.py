"""A tiny style run, as a user runs it: tools/train.py on a *_style_tiny config, then diffusers loads the
exported placeholder into its own pipeline and samples with a style prompt."""
import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ..conftest import REPO
from ..helpers.tiny_pipeline import stock_pipeline
from .test_train import train

TWO_STEPS = ['train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2', 'default_hooks.export.interval=2',
             'default_hooks.sample_grid.interval=2']


@pytest.mark.parametrize('config', ['textual_inversion/textual_inversion_style_tiny.py', 'vico/vico_style_tiny.py'])
def test_tiny_style_run_exports_a_placeholder_that_diffusers_loads(tmp_path, tiny_path, config):
    proc = train(tmp_path, *TWO_STEPS, config=os.path.join(REPO, 'configs', config))
    assert "saved samples of ['a painting in the style of S*'" in proc.stdout + proc.stderr
    learned = load_file(str(tmp_path / 'learned_embeds.safetensors'))
    assert list(learned) == ['S*']
    pipe = stock_pipeline(tiny_path)
    embeddings = pipe.text_encoder.get_input_embeddings().weight
    painting = embeddings[pipe.tokenizer('painting').input_ids[1]].detach().clone()  # the init token
    pipe.load_textual_inversion(str(tmp_path / 'learned_embeds.safetensors'))
    token = pipe.tokenizer.convert_tokens_to_ids('S*')
    loaded = pipe.text_encoder.get_input_embeddings().weight[token].detach()
    assert torch.equal(loaded, learned['S*'])
    assert (loaded - painting).abs().max() > 1e-5  # trained away from its initialisation, 'painting'
    kwargs = dict(num_inference_steps=2, height=64, width=64)
    styled = pipe('a dog in the style of S*', generator=torch.Generator().manual_seed(0), **kwargs).images[0]
    plain = pipe('a dog in the style of painting', generator=torch.Generator().manual_seed(0), **kwargs).images[0]
    assert styled.size == (64, 64)
    assert np.abs(np.asarray(styled, np.int16) - np.asarray(plain, np.int16)).max() > 0  # the token is used


def test_infer_on_a_style_config_prompts_for_the_style_by_default(tmp_path, tiny_path, capsys):
    from tools.infer import main
    config = os.path.join(REPO, 'configs', 'vico', 'vico_style_tiny.py')
    samples = main([config, '--steps', '1', '--height', '64', '--width', '64', '--out-dir', str(tmp_path),
                    '--cfg-options', f'work_dir={tmp_path}'])
    assert len(samples) == 1
    assert "samples of ['a painting in the style of S*']" in capsys.readouterr().out
    main([os.path.join(REPO, 'configs', 'vico', 'vico_tiny.py'), '--steps', '1', '--height', '64', '--width', '64',
          '--out-dir', str(tmp_path), '--cfg-options', f'work_dir={tmp_path}'])
    assert "samples of ['a photo of S*']" in capsys.readouterr().out
