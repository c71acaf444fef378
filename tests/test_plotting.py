"Figures: masks drawn over images stay readable; rows of images get their titles."
import numpy as np
import pytest
from PIL import Image
from course_utils.plotting import overlay_mask, show_images


def test_overlay_keeps_the_inside_dims_the_outside_and_draws_the_edge():
    img = Image.fromarray(np.full((8, 8, 3), 200, np.uint8))
    mask = np.zeros((8, 8), bool); mask[2:6, 2:6] = True
    out = overlay_mask(img, mask, color=(255, 0, 255), dim=0.5)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    assert (out[3:5, 3:5] == 200).all()                        # inside: the image's own colours
    assert (out[0, 0] == 100).all()                            # outside: dimmed
    assert (out[2, 2:6] == (255, 0, 255)).all() and (out[3, 2] == (255, 0, 255)).all()  # the edge
    assert (out[1, 2] == 100).all()                            # the edge is drawn inside the mask only


def test_overlay_resizes_coarse_masks_and_refuses_bad_ones():
    img = Image.fromarray(np.full((16, 16, 3), 100, np.uint8))
    coarse = np.zeros((4, 4)); coarse[0, 0] = 1               # a 4x4 attention-style mask
    out = overlay_mask(img, coarse)
    assert (out[1:3, 1:3] == 100).all() and out[8:, 8:].max() < 100
    with pytest.raises(ValueError, match="2-D"): overlay_mask(img, np.zeros((4, 4, 3)))
    grey = overlay_mask(np.full((16, 16), 100.0), coarse)         # a grey H x W array: as its RGB image
    assert grey.shape == (16, 16, 3) and np.array_equal(grey, out)
    with pytest.raises(ValueError, match="image must be"): overlay_mask(np.zeros((16, 16, 4)), coarse)


def test_show_images_titles_every_panel():
    fig = show_images([np.zeros((4, 4, 3), np.uint8)] * 3, ["a", "b", "c"], "row", cols=2)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["a", "b", "c"] and fig._suptitle.get_text() == "row"
    with pytest.raises(ValueError, match="no images"): show_images([])
    with pytest.raises(ValueError, match="got 2 titles for 3 images"): show_images([np.zeros((4, 4, 3), np.uint8)] * 3, ["a", "b"])


def test_overlay_outlines_holes_too():
    img = Image.fromarray(np.full((12, 12, 3), 200, np.uint8))
    ring = np.zeros((12, 12), bool); ring[1:11, 1:11] = True; ring[4:8, 4:8] = False
    out = overlay_mask(img, ring, color=(255, 0, 255), dim=0.5)
    assert (out[3, 4:8] == (255, 0, 255)).all()               # the hole's edge, drawn inside the ring
    assert (out[5:7, 5:7] == 100).all()                        # the hole is outside: dimmed
    assert (out[2, 2] == 200).all()                            # the ring's inside


def test_masks_and_maps_may_be_tensors():
    "A mask or attention map straight from the helpers (a torch tensor, on the GPU with a real model) draws as its array."
    import torch
    im = Image.fromarray(np.full((16, 16, 3), 200, np.uint8))
    mask = torch.zeros(4, 4, requires_grad=True) + torch.eye(4)          # a soft map that still carries a graph
    assert np.array_equal(overlay_mask(im, mask), overlay_mask(im, np.eye(4, dtype=np.float32)))
    fig = show_images([im, mask, mask > 0.5], ["image", "map", "mask"])
    assert [a.get_images()[0].get_array().shape for a in fig.axes] == [(16, 16, 3), (4, 4), (4, 4)]
