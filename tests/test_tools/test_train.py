"""tools/train.py, tools/dist_train.sh and resume, run as a user runs them (subprocesses, tiny default)."""
import os
import sys

import pytest
import torch
from safetensors.torch import load_file

from ..conftest import DREAMBENCH, REPO, TINY_CONFIG, needs_dreambench
from ..helpers.runs import SHORT_RUN, run, run_together

# a short schedule: few iterations, a 2-step sample grid
SHORT = ['train_cfg.max_iters=4', 'default_hooks.checkpoint.interval=2', 'default_hooks.export.interval=2',
         'default_hooks.sample_grid.interval=4', 'default_hooks.sample_grid.num_inference_steps=2',
         'default_hooks.sample_grid.height=64', 'default_hooks.sample_grid.width=64']


def train(work_dir, *options, config=TINY_CONFIG, check=True):
    return run([sys.executable, 'tools/train.py', config, '--work-dir', str(work_dir),
                '--cfg-options', *SHORT, *options], check=check)


def trainable(path):
    return load_file(str(path))


def test_train_exports_weights_grid_log_and_small_checkpoints(short_run):
    tmp_path = short_run
    for name in ('vico_weights.safetensors', 'vico_weights_iter_2.safetensors', 'vico_weights_iter_4.safetensors',
                 'learned_embeds.safetensors', 'iter_4.pth', 'vis/iter_4.png'):
        assert (tmp_path / name).exists(), name
    assert any(p.suffix == '.log' for p in tmp_path.rglob('*.log'))
    ckpt = torch.load(tmp_path / 'iter_4.pth', map_location='cpu', weights_only=True)  # no pickle of code
    state = ckpt['state_dict']
    assert state and all('image_cross_attention' in k or 'trainable_embeddings' in k for k in state)
    weights = trainable(tmp_path / 'vico_weights.safetensors')
    assert set(weights) == set(state)
    for key, value in weights.items():
        assert torch.equal(value, state[key])
    before = trainable(tmp_path / 'vico_weights_iter_2.safetensors')
    assert any(not torch.equal(before[k], weights[k]) for k in weights)  # it trained


def test_extract_vico_parameters_snippet_on_a_runner_checkpoint(short_run, tiny_cfg, tiny_path, reference_image):

    def extract_vico_parameters(state_dict):  # the seed README's snippet
        new_state_dict = dict()
        for k, v in state_dict.items():
            if 'image_cross_attention' in k or 'trainable_embeddings' in k:
                new_state_dict[k.replace('module.', '')] = v
        return new_state_dict

    checkpoint = torch.load(short_run / 'iter_4.pth', map_location='cpu', weights_only=True)  # its last
    state_dict = extract_vico_parameters(checkpoint['state_dict'])
    from mmagic_vico.registry import MODELS
    vico = MODELS.build(tiny_cfg.model)
    missing, unexpected = vico.load_state_dict(state_dict, strict=False)
    assert not missing and not unexpected
    exported = trainable(short_run / 'vico_weights.safetensors')
    for k, v in vico.trainable_state_dict().items():
        assert torch.equal(v, exported[k])


def test_learned_embeds_load_in_diffusers(short_run, tiny_path):
    from diffusers import StableDiffusionPipeline
    tmp_path = short_run
    pipe = StableDiffusionPipeline.from_pretrained(tiny_path, safety_checker=None, requires_safety_checker=False)
    pipe.load_textual_inversion(str(tmp_path / 'learned_embeds.safetensors'))
    token_id = pipe.tokenizer.convert_tokens_to_ids('S*')
    learned = trainable(tmp_path / 'vico_weights.safetensors')
    vector = next(v for k, v in learned.items() if 'trainable_embeddings' in k)[0]
    torch.testing.assert_close(pipe.text_encoder.get_input_embeddings().weight[token_id], vector, rtol=0, atol=0)


def test_resumed_training_equals_uninterrupted(short_run, tmp_path):
    straight, resumed = short_run, tmp_path / 'resumed'
    run([sys.executable, 'tools/train.py', TINY_CONFIG, '--work-dir', str(resumed), '--resume',
         str(straight / 'iter_2.pth'), '--cfg-options', *SHORT_RUN])
    a, b = trainable(straight / 'vico_weights.safetensors'), trainable(resumed / 'vico_weights.safetensors')
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    mid = trainable(straight / 'vico_weights_iter_2.safetensors')
    assert any(not torch.equal(mid[k], a[k]) for k in a)  # the resumed half really trained


def test_two_process_gloo_training_keeps_ranks_identical(tmp_path, tiny_path):
    config = tmp_path / 'dist.py'
    config.write_text(f"_base_ = ['{TINY_CONFIG}']\n"
                      "custom_imports = dict(imports=['mmagic_vico.models', 'tests.helpers.rank_weights_hook'])\n"
                      "default_hooks = dict(sample_grid=dict(num_inference_steps=2, height=64, width=64))\n"
                      "custom_hooks = [dict(type='EveryRankWeightsHook')]\n")
    run(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir', str(tmp_path / 'out'),
                '--cfg-options', 'train_cfg.max_iters=3', 'default_hooks.checkpoint.interval=3'],
               env=dict(PORT='29533', OMP_NUM_THREADS='1'))
    r0, r1 = trainable(tmp_path / 'out' / 'rank0.safetensors'), trainable(tmp_path / 'out' / 'rank1.safetensors')
    emb = [k for k in r0 if 'trainable_embeddings' in k]
    assert emb and all(torch.equal(r0[k], r1[k]) for k in r0)
    from transformers import CLIPTextModel, CLIPTokenizer  # the embedding it started from: 'toy'
    toy = CLIPTokenizer.from_pretrained(tiny_path, subfolder='tokenizer')('toy', add_special_tokens=False).input_ids
    start = CLIPTextModel.from_pretrained(tiny_path, subfolder='text_encoder').get_input_embeddings().weight[toy]
    assert not torch.allclose(r0[emb[0]], start.detach())  # both ranks trained, in step


@needs_dreambench
def test_training_on_real_photos_of_mixed_sizes_and_modes(tmp_path, tiny_path):
    """dog7 as shipped (all 512x512) plus variants a user's folder has: other sizes, RGBA, EXIF rotation."""
    from PIL import Image
    source = os.path.join(DREAMBENCH, 'dog7')
    folder = tmp_path / 'data' / 'dog7'
    folder.mkdir(parents=True)
    photos = sorted(os.listdir(source))
    for name in photos[:2]:
        Image.open(os.path.join(source, name)).save(folder / name)
    Image.open(os.path.join(source, photos[2])).resize((384, 520)).save(folder / 'tall.jpg')
    Image.open(os.path.join(source, photos[3])).resize((640, 480)).convert('RGBA').save(folder / 'wide.png')
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees on display
    Image.open(os.path.join(source, photos[4])).resize((300, 200)).save(folder / 'rotated.jpg', exif=exif)
    train(tmp_path / 'out', f'data_root={tmp_path / "data"}', 'concept_dir=dog7', 'initialize_token=dog',
          'train_cfg.max_iters=2')
    assert (tmp_path / 'out' / 'vico_weights.safetensors').exists()


@pytest.mark.parametrize('case', ['missing', 'empty', 'no_readable_image'])
def test_bad_concept_folder_fails_before_training(tmp_path, tiny_path, case):
    """tools/train.py's main in this process: the error it raises is the message the tool prints
    (tests/test_reliability/test_user_errors.py: train's user mistake from the shell)."""
    from mmagic_vico.utils.errors import UserError
    from tools.train import main
    root = tmp_path / 'data'
    root.mkdir()
    if case != 'missing':
        (root / 'mine').mkdir()
    if case == 'no_readable_image':
        (root / 'mine' / 'notes.txt').write_text('not a photo')
        (root / 'mine' / 'broken.jpg').write_bytes(b'\xff\xd8\xff not really a jpeg')
    with pytest.raises(UserError) as info:
        main([TINY_CONFIG, '--work-dir', str(tmp_path / 'out'), '--cfg-options', *SHORT, f'data_root={root}',
              'concept_dir=mine'])
    text = str(info.value)
    assert str(root / 'mine') in text
    assert {'missing': 'does not exist', 'empty': 'no readable image', 'no_readable_image': 'broken.jpg'}[case] in text
    assert not (tmp_path / 'out').exists()  # before any file (was: no weights)


def test_textual_inversion_trains_and_samples_through_the_same_tools(tmp_path, tiny_path, capsys, monkeypatch):
    from tools.infer import main as infer  # in this process (tests/test_tools/test_infer.py: the same)
    config = os.path.join(REPO, 'configs', 'textual_inversion', 'textual_inversion_tiny.py')
    run([sys.executable, 'tools/train.py', config, '--work-dir', str(tmp_path), '--cfg-options', *SHORT])
    weights = trainable(tmp_path / 'textual_inversion_weights.safetensors')
    assert list(weights) == ['text_encoder.embeddings.token_embedding.trainable_embeddings']
    assert (tmp_path / 'learned_embeds.safetensors').exists() and (tmp_path / 'vis' / 'iter_4.png').exists()
    monkeypatch.chdir(REPO)  # where a user runs it
    capsys.readouterr()
    infer([config, '--prompt', 'a photo of S*', '--steps', '2', '--height', '64', '--width', '64', '--cfg-options',
           f'work_dir={tmp_path}'])
    assert 'loaded trained weights' in capsys.readouterr().out and (tmp_path / 'samples' / 'grid.png').exists()


def test_dreambooth_trains_with_cached_class_images(tmp_path, tiny_path):
    config = os.path.join(REPO, 'configs', 'dreambooth', 'dreambooth_tiny.py')
    options = [*SHORT, f'class_dir={tmp_path / "class"}', f'train_dataloader.dataset.class_dir={tmp_path / "class"}',
               f'default_hooks.class_images.class_dir={tmp_path / "class"}', 'default_hooks.class_images.num_images=2',
               'default_hooks.class_images.num_inference_steps=2', 'train_cfg.max_iters=2']
    first = run([sys.executable, 'tools/train.py', config, '--work-dir', str(tmp_path / 'a'), '--cfg-options', *options])
    assert '2 generated, 0 reused' in first.stdout + first.stderr
    # then, at once (they only read the cached class images): DreamBooth again, and DreamBooth-LoRA
    lora = os.path.join(REPO, 'configs', 'dreambooth', 'dreambooth_lora_tiny.py')
    second, lora_run = run_together(
        [sys.executable, 'tools/train.py', config, '--work-dir', str(tmp_path / 'b'), '--cfg-options', *options],
        [sys.executable, 'tools/train.py', lora, '--work-dir', str(tmp_path / 'c'), '--cfg-options', *options])
    assert '0 generated, 2 reused' in second.stdout + second.stderr
    assert (tmp_path / 'b' / 'diffusers' / 'unet' / 'config.json').exists()
    assert '0 generated, 2 reused' in lora_run.stdout + lora_run.stderr  # the same class images: a LoRA's too
    assert (tmp_path / 'c' / 'pytorch_lora_weights.safetensors').exists()
