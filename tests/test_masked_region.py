"""Inpainting "only masked" (generation/masked_region.py): the crop around the mask, grown by
the padding and to the drawing's aspect ratio within the picture, as webui's
``get_crop_region`` and ``expand_crop_region`` find it; pasting back keeps every pixel the
mask leaves out."""

import numpy as np
import pytest
from PIL import Image

from genlab.generation.masked_region import crop_box, paste_back


def _mask(size, box):
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


@pytest.mark.parametrize(
    ("size", "box", "padding", "drawn"),
    [
        ((96, 64), (60, 30, 72, 42), 4, (32, 32)),
        ((96, 64), (0, 0, 10, 50), 0, (64, 32)),  # tall region drawn wide: grown sideways
        ((96, 64), (80, 50, 96, 64), 8, (48, 32)),  # a corner: shifted inside the picture
        ((64, 64), (0, 0, 64, 64), 10, (32, 32)),  # all of it: the whole picture
    ],
)
def test_the_crop_covers_the_mask_and_its_padding_at_the_drawings_aspect(size, box, padding,
                                                                        drawn):  # fmt: skip
    x1, y1, x2, y2 = crop_box(_mask(size, box), padding, drawn)
    assert 0 <= x1 < x2 <= size[0] and 0 <= y1 < y2 <= size[1]
    assert x1 <= max(0, box[0] - padding) and y1 <= max(0, box[1] - padding)
    assert x2 >= min(size[0], box[2] + padding) and y2 >= min(size[1], box[3] + padding)
    fits = x2 - x1 == size[0] or y2 - y1 == size[1]  # cut by the picture's edge
    assert fits or abs((x2 - x1) / (y2 - y1) - drawn[0] / drawn[1]) < 0.1


def test_pasting_back_keeps_what_the_mask_leaves_out():
    rng = np.random.default_rng(1)
    original = Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    alpha = _mask((60, 40), (20, 10, 30, 20))
    box = crop_box(alpha, 2, (32, 32))
    drawn = Image.new("RGB", (32, 32), (0, 255, 0))
    out = np.asarray(paste_back(drawn, original, box, alpha))
    inside = np.asarray(alpha) > 0
    assert np.array_equal(out[~inside], np.asarray(original)[~inside])
    assert (out[inside] == (0, 255, 0)).all()
