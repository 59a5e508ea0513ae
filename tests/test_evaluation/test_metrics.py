import os
import random

import pytest
import torch
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

from mmagic_vico.evaluation import ImageEmbedder, TextImageScorer, mean_pairwise_cosine, read_dreambench
from mmagic_vico.models.tiny_sd import build_tiny_clip, build_tiny_dino
from mmagic_vico.utils.image import list_images

from ..conftest import DREAMBENCH, REPO, needs_dreambench

CONCEPT = os.path.join(REPO, 'data', 'vico', 'tiny_toy')


@pytest.fixture(scope='module')
def clip_folder(tmp_path_factory, tiny_path):
    return build_tiny_clip(str(tmp_path_factory.mktemp('clip') / 'tiny_clip'), tiny_path)


@pytest.fixture(scope='module')
def dino_folder(tmp_path_factory):
    return build_tiny_dino(str(tmp_path_factory.mktemp('dino') / 'tiny_dino'))


def images():
    return [Image.open(p) for p in list_images(CONCEPT)]


@pytest.mark.parametrize('kind', ['clip', 'dino'])
def test_image_similarity_known_answers(kind, clip_folder, dino_folder):
    embed = ImageEmbedder(clip_folder if kind == 'clip' else dino_folder, kind)
    real = embed(images())
    one = real[:1]
    assert mean_pairwise_cosine(one, one) == pytest.approx(1.0, abs=1e-6)  # an image against itself
    shuffled = images()
    random.Random(0).shuffle(shuffled)
    assert mean_pairwise_cosine(embed(shuffled), real) == pytest.approx(mean_pairwise_cosine(real, real), abs=1e-6)
    assert mean_pairwise_cosine(real[:1], real[1:2]) < 1 - 1e-4  # two different images are not identical
    assert real.shape == (len(images()), 32)


def test_clip_t_matches_transformers_clip_model(clip_folder):
    prompts = ['a toy in the snow', 'a toy on the beach', 'a red toy', 'a toy with a city in the background',
               'a cube shaped toy']
    scores = TextImageScorer(clip_folder)(images(), prompts)
    model, processor = CLIPModel.from_pretrained(clip_folder), CLIPProcessor.from_pretrained(clip_folder)
    with torch.no_grad():
        out = model(**processor(text=prompts, images=images(), return_tensors='pt', padding=True))
    independent = out.logits_per_image.diag() / model.logit_scale.exp()  # CLIPScore / 100 without the clamp
    torch.testing.assert_close(scores, independent, rtol=1e-5, atol=1e-6)


@needs_dreambench
def test_dreambench_protocol_from_the_dataset_folder():
    protocol = read_dreambench(DREAMBENCH)
    assert len(protocol.object_prompts) == 25 and len(protocol.live_prompts) == 25
    assert protocol.classes['dog7'] == 'dog' and protocol.classes['robot_toy'] == 'toy'
    assert protocol.prompts('dog7', 'S*')[0] == 'a S* dog in the jungle'
    assert 'a S* dog wearing a red hat' in protocol.prompts('dog7', 'S*')  # live prompts for a dog
    assert protocol.prompts('teapot', 'S*')[-1] == 'a cube shaped S* teapot'  # object prompts
    assert protocol.text_prompts('teapot')[0] == 'a teapot in the jungle'
    assert protocol.prompts('teapot', None)[-1] == 'a cube shaped teapot'  # the base model's: the class alone
    with pytest.raises(KeyError, match='not in the protocol'):
        protocol.prompts('unicorn', 'S*')


@needs_dreambench
def test_evaluate_tool_on_the_tiny_default_for_two_subjects(clip_folder, dino_folder, tmp_path, capsys):
    from tools.evaluate import main
    args = [os.path.join(REPO, 'configs', 'textual_inversion', 'textual_inversion_tiny.py'), '--dreambench',
            DREAMBENCH, '--subjects', 'dog7', 'teapot', '--clip', clip_folder, '--dino', dino_folder,
            '--num-images', '1', '--steps', '1', '--height', '64', '--width', '64', '--out-dir', str(tmp_path)]
    report = main(args)
    assert set(report['subjects']) == {'dog7', 'teapot'}
    for scores in report['subjects'].values():
        assert scores['images'] == 25 and -1 <= scores['CLIP-T'] <= 1 and -1 <= scores['DINO'] <= 1
    assert sorted(os.listdir(tmp_path / 'dog7')) == (['.manifest.json'] + [f'{p:02d}_00.png' for p in range(25)]
                                                     + ['grid.png'])
    assert Image.open(tmp_path / 'dog7' / 'grid.png').height > 25 * 64  # a row per prompt, its caption under it
    assert '| **overall** |' in (tmp_path / 'scores.md').read_text()
    stamp = os.path.getmtime(tmp_path / 'dog7' / '00_00.png')
    again = main(args)  # resumes: the images are reused, the scores the same
    assert os.path.getmtime(tmp_path / 'dog7' / '00_00.png') == stamp
    assert again['overall'] == pytest.approx(report['overall'])


@needs_dreambench
def test_compare_tool_one_table_for_several_methods(clip_folder, dino_folder, tmp_path, tiny_cfg, tiny_path):
    from mmengine import Config

    from mmagic_vico.registry import MODELS
    from tools.compare import main
    from tools.evaluate import main as evaluate
    config = os.path.join(REPO, 'configs', 'textual_inversion', 'textual_inversion_tiny.py')
    model = MODELS.build(Config.fromfile(config).model)
    for subject, factor in (('dog7', -3.0), ('teapot', 2.0)):  # "trained": each subject's placeholder moved
        with torch.no_grad():
            model.text_encoder.get_input_embeddings().trainable_embeddings.mul_(factor)
        model.save_weights(str(tmp_path / f'ti_{subject}.safetensors'))
    common = ['--dreambench', DREAMBENCH, '--subjects', 'dog7', 'teapot', '--clip', clip_folder, '--dino',
              dino_folder, '--num-images', '1', '--steps', '1', '--height', '64', '--width', '64']
    reports = main(['--method', 'TI trained', config, str(tmp_path / 'ti_{subject}.safetensors'),
                    '--method', 'TI untrained', config, *common, '--out-dir', str(tmp_path / 'cmp')])
    assert list(reports) == ['TI trained', 'TI untrained']
    table = (tmp_path / 'cmp' / 'compare.md').read_text()
    assert table.startswith('| method | CLIP-T | CLIP-I | DINO |') and '| TI trained |' in table
    trained, untrained = (Image.open(tmp_path / 'cmp' / name / 'dog7' / '00_00.png')
                          for name in ('TI_trained', 'TI_untrained'))
    assert trained.tobytes() != untrained.tobytes()  # the weights were loaded for the first method only
    # the same method through tools/evaluate.py: the same scores
    alone = evaluate([config, *common, '--out-dir', str(tmp_path / 'alone')])
    assert alone['overall'] == pytest.approx(reports['TI untrained']['overall'])
    # one model serves every subject: teapot's images are those of teapot's weights alone, not dog7's
    teapot = common[:common.index('--subjects') + 1] + ['teapot'] + common[common.index('--subjects') + 3:]
    evaluate([config, '--weights', str(tmp_path / 'ti_{subject}.safetensors'), *teapot,
              '--out-dir', str(tmp_path / 'teapot')])
    assert (Image.open(tmp_path / 'teapot' / 'teapot' / '00_00.png').tobytes()
            == Image.open(tmp_path / 'cmp' / 'TI_trained' / 'teapot' / '00_00.png').tobytes())


@needs_dreambench
def test_unknown_subject_or_method_spec_fail_before_any_image(clip_folder, dino_folder, tmp_path, capsys):
    from tools.compare import main
    config = os.path.join(REPO, 'configs', 'textual_inversion', 'textual_inversion_tiny.py')
    common = ['--dreambench', DREAMBENCH, '--clip', clip_folder, '--dino', dino_folder, '--out-dir', str(tmp_path)]
    with pytest.raises(ValueError, match=r"--subjects \['unicorn'\] are not in .*give subjects it lists: .*'dog7'"):
        main(['--method', 'TI', config, '--subjects', 'unicorn', *common])
    for bad, expected in ((['--method', 'TI'], 'give NAME CONFIG'),
                          (['--method', 'TI', 'configs/nope.py'], "config 'configs/nope.py' does not exist"),
                          (['--method', 'A', config, '--method', 'A', config], 'repeat')):
        with pytest.raises(SystemExit):
            main([*bad, '--subjects', 'dog7', *common])
        assert expected in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing generated
