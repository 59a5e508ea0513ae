import os

import numpy as np
import pytest
from mmengine.dataset import pseudo_collate
from PIL import Image

from mmagic_vico.datasets import ViCoConceptDataset
from mmagic_vico.utils.image import to_rgb

from ..conftest import REPO

TEMPLATES = os.path.join(REPO, 'data', 'vico', 'imagenet_templates_small.txt')
PIPELINE = [dict(type='LoadConceptImage'),
            dict(type='Resize', scale=(48, 32), keep_ratio=False, interpolation='bicubic', backend='pillow'),
            dict(type='PackConceptImage')]


def make_folder(root, n, size=(40, 30)):
    folder = root / 'concept'
    folder.mkdir()
    for i in range(n):
        Image.new('RGB', size, (i * 40, 10, 200)).save(folder / f'{i}.png')
    return folder


def dataset(root, **kw):
    from mmagic_vico.utils import register_all_modules
    register_all_modules()
    return ViCoConceptDataset(str(root), 'concept', 'S*', templates=TEMPLATES, pipeline=PIPELINE, **kw)


def test_items_pair_a_target_with_another_image_and_a_caption(tmp_path):
    make_folder(tmp_path, 4)
    ds = dataset(tmp_path)
    assert len(ds) == 4
    templates = [t.strip() for t in open(TEMPLATES) if t.strip()]
    for i in range(4):
        for _ in range(5):
            item = ds[i]
            meta = item['data_samples']
            assert meta.ref_path != meta.img_path and meta.img_path.endswith(f'{i}.png')
            assert meta.prompt in [t.format('S*') for t in templates]
            assert item['inputs']['img'].shape == (3, 32, 48) and item['inputs']['img'].dtype.is_floating_point is False
    batch = pseudo_collate([ds[0], ds[1]])  # batch size > 1 through mmengine's collate
    assert len(batch['inputs']['img']) == 2 and len(batch['data_samples']) == 2


def test_single_image_is_its_own_reference(tmp_path):
    make_folder(tmp_path, 1)
    item = dataset(tmp_path)[0]
    assert item['data_samples'].ref_path == item['data_samples'].img_path


def test_unreadable_files_are_skipped_with_a_warning(tmp_path):
    folder = make_folder(tmp_path, 2)
    (folder / 'broken.jpg').write_bytes(b'\xff\xd8\xffgarbage')
    good = folder / 'truncated.png'
    Image.new('RGB', (64, 64), (1, 2, 3)).save(good)
    good.write_bytes(good.read_bytes()[:60])
    (folder / 'readme.txt').write_text('x')
    with pytest.warns(UserWarning) as record:
        ds = dataset(tmp_path)
    text = ' '.join(str(w.message) for w in record)
    assert 'broken.jpg' in text and 'truncated.png' in text and 'readme.txt' in text
    assert len(ds) == 2


def test_bad_templates_file_fails(tmp_path):
    make_folder(tmp_path, 2)
    bad = tmp_path / 't.txt'
    bad.write_text('a photo without a slot\n')
    with pytest.raises(ValueError, match='needs one'):
        ViCoConceptDataset(str(tmp_path), 'concept', 'S*', templates=str(bad), pipeline=PIPELINE)
    with pytest.raises(FileNotFoundError, match='templates'):
        ViCoConceptDataset(str(tmp_path), 'concept', 'S*', templates=str(tmp_path / 'none.txt'), pipeline=PIPELINE)


def test_any_mode_becomes_upright_rgb(tmp_path):
    base = Image.new('RGB', (30, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    base.save(tmp_path / 'rot.jpg', exif=exif)
    assert to_rgb(str(tmp_path / 'rot.jpg')).size == (20, 30)
    rgba = Image.new('RGBA', (4, 4), (0, 0, 0, 0))
    assert np.asarray(to_rgb(rgba))[0, 0].tolist() == [255, 255, 255]  # transparent -> white
    cmyk = Image.new('CMYK', (4, 4), (0, 255, 255, 0))
    assert np.asarray(to_rgb(cmyk))[0, 0].tolist() == [255, 0, 0]
    deep = Image.fromarray(np.full((4, 4), 65535, dtype='<u2'))
    assert np.asarray(to_rgb(deep))[0, 0].tolist() == [255, 255, 255]
    half = Image.fromarray(np.full((4, 4), 32768, dtype='<u2'))
    assert np.asarray(to_rgb(half))[0, 0].tolist() == [128, 128, 128]  # rescaled, not clipped
    assert to_rgb(Image.new('P', (3, 3))).mode == 'RGB'
