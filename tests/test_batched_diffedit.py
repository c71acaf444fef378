"""Batched DiffEdit, DDIM inversion and SDEdit: a list of images runs in one UNet call per step and
gives, image by image, what single-image calls give (to float tolerance)."""
import numpy as np
import pytest
import torch
from course_utils.diffedit import diffedit_mask, diffedit_mask_single_prompt, diffedit, img2img, DiffEditMask
from course_utils.inversion import ddim_invert, check_image
from course_utils.metrics import held_out_edits
from course_utils.toyworld import render
from tolerance import close, distinct

REL = 3e-3   # after a DDIM inversion, guidance 7.5 on random weights amplifies rounding up to ~3e-4 (tolerance.py)


@pytest.fixture(scope="module")
def batch():
    edits = [held_out_edits(k, 1, offset=o)[0] for k, o in (("color", 123), ("texture", 223), ("shape", 323))]
    return edits, [render(e.source).image for e in edits]


def unet_rows(models):
    "Record the rows of every UNet call (remove the hook when done)."
    rows = []
    return rows, models.unet.register_forward_hook(lambda mod, args, out: rows.append(args[0].shape[0]))


def test_masks_batched_equal_single(random_models, batch):
    edits, ims = batch
    rows, h = unet_rows(random_models)
    try: masks = diffedit_mask(random_models, ims, [e.source_prompt for e in edits], [e.target_prompt for e in edits],
                               n=4, seed=[0, 1, 2])
    finally: h.remove()
    assert rows == [2 * 4 * 3], "3 images x 4 samples x (reference, query): one UNet call"
    assert isinstance(masks, list) and len(masks) == 3 and all(isinstance(m, DiffEditMask) for m in masks)
    distinct(m.soft for m in masks)
    for i, (e, im) in enumerate(zip(edits, ims)):
        one = diffedit_mask(random_models, im, e.source_prompt, e.target_prompt, n=4, seed=i)
        close(masks[i].soft, one.soft)
    single = diffedit_mask_single_prompt(random_models, ims, [e.target_prompt for e in edits], n=3)
    for e, im, mk in zip(edits, ims, single):
        close(mk.soft, diffedit_mask_single_prompt(random_models, im, e.target_prompt, n=3).soft)


def test_inversion_and_edit_batched_equal_single(random_models, batch):
    edits, ims = batch
    masks = [np.asarray(e.region) for e in edits]                      # image-size masks, one per image
    inv = ddim_invert(random_models, ims, num_inference_steps=8, ratio=0.5, progress=False)
    assert inv.latents.shape == (5, 3, 4, 16, 16)
    rows, h = unet_rows(random_models)
    try: out, z = diffedit(random_models, ims, [e.target_prompt for e in edits], masks, ratio=0.5, num_inference_steps=8,
                           inversion=inv, return_latents=True, progress=False)
    finally: h.remove()
    assert rows == [6] * 4, "one UNet call of 2 x 3 rows per step"
    assert len(out) == 3 and z.shape == (3, 4, 16, 16)
    distinct(z)
    for i, (e, im) in enumerate(zip(edits, ims)):
        inv1 = ddim_invert(random_models, im, num_inference_steps=8, ratio=0.5, progress=False)
        close(inv.latents[:, i:i + 1], inv1.latents, REL)
        _, z1 = diffedit(random_models, im, e.target_prompt, masks[i], ratio=0.5, num_inference_steps=8,
                         return_latents=True, progress=False)
        close(z[i:i + 1], z1, REL)


def test_img2img_batched_equal_single_with_per_image_seeds(random_models, batch):
    edits, ims = batch
    out, z = img2img(random_models, ims, "a red plain circle on the left", strength=0.5, num_inference_steps=6,
                     seed=[3, 4, 5], return_latents=True, progress=False)
    distinct(z)
    for i, im in enumerate(ims):
        _, z1 = img2img(random_models, im, "a red plain circle on the left", strength=0.5, num_inference_steps=6,
                        seed=3 + i, return_latents=True, progress=False)
        close(z[i:i + 1], z1)


def test_a_tensor_of_several_images_is_a_batch(random_models, batch):
    "A B x 3 x H x W tensor is B images, as their list is (not one image whose rows the editor would mix up)."
    _, ims = batch
    x = torch.cat([check_image(random_models, im) for im in ims])          # 3 x 3 x 64 x 64 in [-1, 1]
    kw = dict(strength=0.5, num_inference_steps=6, seed=[3, 4, 5], return_latents=True, progress=False)
    out, z = img2img(random_models, x, "a red plain circle on the left", **kw)
    _, z_list = img2img(random_models, ims, "a red plain circle on the left", **kw)
    assert isinstance(out, list) and len(out) == 3
    close(z, z_list)
    inv = ddim_invert(random_models, x, num_inference_steps=4, ratio=0.5, progress=False)
    assert inv.latents.shape[1] == 3
    with pytest.raises(ValueError, match="expected one image, a 1x3x64x64 tensor"): check_image(random_models, x)


def test_batches_that_do_not_line_up_say_so(random_models, batch):
    edits, ims = batch
    m = random_models
    with pytest.raises(ValueError, match="query_prompt: got 2 for 3 images"): diffedit(m, ims, ["a", "b"], np.zeros((16, 16)))
    with pytest.raises(ValueError, match="mask: got 1 for 3 images"): diffedit(m, ims, "a", [np.zeros((16, 16))])
    with pytest.raises(ValueError, match="seed: got 2 for 3 images"): img2img(m, ims, "a", seed=[1, 2])
    with pytest.raises(ValueError, match="reference_prompt: got 2 for 3 images"): diffedit_mask(m, ims, ["a", "b"], "c")
    with pytest.raises(ValueError, match="no images"): ddim_invert(m, [])
    inv = ddim_invert(m, ims[:2], num_inference_steps=4, ratio=0.5, progress=False)
    with pytest.raises(ValueError, match="the inversion holds 2 images, the edit 3"):
        diffedit(m, ims, "a", np.zeros((16, 16)), inversion=inv, ratio=0.5, num_inference_steps=4)
    with pytest.raises(ValueError, match="not the prompt the given inversion was made with"):
        diffedit(m, ims[:2], "a", np.zeros((16, 16)), inversion=inv, inversion_prompt="a red thing", ratio=0.5, num_inference_steps=4)


def test_inputs_that_are_not_images_masks_or_seeds_say_so(random_models, batch):
    "An iterator of images, a mask of 0 and 255 or of another shape, a generator for a seed: errors, not quiet wrong edits."
    _, ims = batch
    m = random_models
    with pytest.raises(TypeError, match="a batch is a list"): img2img(m, (im for im in ims), "a", num_inference_steps=2)
    with pytest.raises(TypeError, match="a batch is a list"): ddim_invert(m, map(lambda im: im, ims))
    with pytest.raises(TypeError, match="expected a PIL RGB image"): img2img(m, np.asarray(ims[0]), "a")
    with pytest.raises(ValueError, match=r"pixels are in \[-1, 1\]"): ddim_invert(m, torch.full((1, 3, 64, 64), 200.0))
    for bad in (np.full((16, 16), 255, np.uint8), np.full((64, 64), 255, np.uint8), -np.ones((16, 16))):
        with pytest.raises(ValueError, match=r"mask values must be in \[0, 1\]"): diffedit(m, ims[0], "a", bad)
    for shape in ((10, 10), (7, 50), (16, 64), (16, 16, 1)):
        with pytest.raises(ValueError, match="mask must be 16x16"): diffedit(m, ims[0], "a", np.ones(shape))
    with pytest.raises(ValueError, match="mask is None"): diffedit(m, ims[0], "a", None)
    from PIL import Image                                     # a mask image: white = edit, as diffusers' inpainting reads it
    region = np.zeros((64, 64), bool); region[16:40, 8:32] = True
    kw = dict(num_inference_steps=4, ratio=0.5, return_latents=True, progress=False)
    assert torch.equal(diffedit(m, ims[0], "a", Image.fromarray(region.astype(np.uint8) * 255), **kw)[1],
                       diffedit(m, ims[0], "a", region, **kw)[1])
    with pytest.raises(TypeError, match="seed: expected an int"): img2img(m, ims[:2], "a", seed=[torch.Generator()] * 2)
    with pytest.raises(TypeError, match="seed: expected an int, or a list of one int per image, got float"):
        diffedit_mask(m, ims[0], "a", "b", seed=1.5)


def test_blend_none_needs_no_mask_and_array_seeds_are_seeds(random_models, batch):
    _, ims = batch
    m = random_models
    kw = dict(num_inference_steps=4, ratio=0.5, blend="none", return_latents=True, progress=False)
    assert torch.equal(diffedit(m, ims[0], "a", None, **kw)[1], diffedit(m, ims[0], "a", np.zeros((16, 16)), **kw)[1])
    kw = dict(num_inference_steps=2, return_latents=True, progress=False)
    assert torch.equal(img2img(m, ims[:2], "a", seed=np.array([3, 4]), **kw)[1], img2img(m, ims[:2], "a", seed=[3, 4], **kw)[1])
