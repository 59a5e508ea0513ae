"""The captioned grid of training previews, tools/infer.py and the evaluation images."""
import numpy as np
import pytest
from PIL import Image

from mmagic_vico.utils.image import caption_font, make_grid, wrap_text

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


def tiles(size, n=4):
    return [Image.new('RGB', size, COLOURS[i % len(COLOURS)]) for i in range(n)]


def box(grid, colour):
    """(left, top, right, bottom) of the pixels of ``colour``."""
    ys, xs = np.nonzero(np.all(np.asarray(grid) == colour, axis=-1))
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def dark_rows(area):
    return np.nonzero((np.asarray(area.convert('L')) < 128).any(axis=1))[0]


@pytest.mark.parametrize('side', [64, 128, 512])
def test_tiles_have_gaps_and_each_row_its_caption_under_it(side):
    grid = make_grid(tiles((side, side)), 2, captions=['a photo of S*', 'a S* on the beach'])
    red, green, blue = box(grid, COLOURS[0]), box(grid, COLOURS[1]), box(grid, COLOURS[2])
    assert red[2] - red[0] == side and red[3] - red[1] == side  # pasted whole
    assert green[0] > red[2] and blue[0] == red[0]  # a gap between columns, rows aligned
    pixels = np.asarray(grid)
    assert (pixels[red[1]:red[3], red[2]:green[0]] == 255).all()  # the gap is white
    strip = grid.crop((red[0], red[3], green[2], blue[1]))  # between the rows: the first caption
    text = dark_rows(strip)
    assert len(text) >= 8, 'the caption is too small to read'  # 12 px font at least
    assert blue[1] > red[3] + text.max()  # the next row starts below the caption
    last = grid.crop((blue[0], blue[3], grid.width, grid.height))
    assert len(dark_rows(last)) >= 8
    assert strip.size != last.size or np.asarray(strip).tobytes() != np.asarray(last).tobytes()  # its own text


def test_without_captions_the_grid_still_has_gaps():
    grid = make_grid(tiles((96, 64)), 2)
    red, green, blue = box(grid, COLOURS[0]), box(grid, COLOURS[1]), box(grid, COLOURS[2])
    assert green[0] > red[2] and blue[1] > red[3]
    assert grid.height - blue[3] == red[1]  # no caption strip: the bottom margin is the top one


def test_long_captions_wrap_within_a_narrow_row_and_end_with_an_ellipsis():
    font = caption_font(64)
    prompt = 'a S* dog wearing a black top hat and a monocle while reading a newspaper in a Parisian cafe at dawn'
    lines = wrap_text(prompt, font, 64)
    assert len(lines) == 4 and lines[-1].endswith('…')
    assert all(font.getlength(line) <= 64 for line in lines)
    assert wrap_text('Supercalifragilisticexpialidocious', font, 64)[0] != 'Supercalifragilisticexpialidocious'
    assert ' '.join(wrap_text('a photo of S*', font, 200)) == 'a photo of S*'
    grid = make_grid(tiles((64, 64), 1), 1, captions=[prompt])
    red = box(grid, COLOURS[0])
    below = grid.crop((0, red[3], grid.width, grid.height))
    cols = np.nonzero((np.asarray(below.convert('L')) < 128).any(axis=0))[0]
    assert red[0] <= cols.min() and cols.max() < red[2]  # within the row's width ...
    assert len(dark_rows(below)) > 3 * 8  # ... on several lines


def test_one_caption_per_row():
    with pytest.raises(ValueError, match='3 captions for 2 rows'):
        make_grid(tiles((64, 64)), 2, captions=['a', 'b', 'c'])
