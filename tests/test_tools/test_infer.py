import os

from PIL import Image

from ..conftest import TINY_CONFIG


def test_infer_cli_writes_pngs_and_a_grid(tmp_path, tiny_path, capsys):
    from tools.infer import main
    out = tmp_path / 'samples'
    samples = main([TINY_CONFIG, '--prompt', 'a photo of S*', '--prompt', 'a S* on the beach', '--num-images', '2',
                    '--steps', '2', '--height', '64', '--width', '96', '--out-dir', str(out),
                    '--cfg-options', f'work_dir={tmp_path}'])
    assert len(samples) == 4
    assert sorted(os.listdir(out)) == ['00_00.png', '00_01.png', '01_00.png', '01_01.png', 'grid.png']
    grid = Image.open(out / 'grid.png')
    assert grid.width > 2 * 96 and grid.height > 2 * 64  # gaps and the prompts under their rows
    assert Image.open(out / '01_01.png').size == (96, 64)
    assert 'ViCo sampling' in capsys.readouterr().err  # the progress bar
