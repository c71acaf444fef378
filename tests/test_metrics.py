"The measurements the lessons and benchmarks report, against references."
import numpy as np
import pytest
from course_utils.metrics import wilson_interval, psnr, iou, mask_iou


@pytest.mark.parametrize("k,n", [(9, 12), (0, 5), (5, 5), (74, 96), (1, 24)])
def test_wilson_interval_matches_scipy(k, n):
    stats = pytest.importorskip("scipy.stats")
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson_interval(k, n, z=stats.norm.ppf(0.975))
    assert lo == pytest.approx(ref.low, abs=1e-9) and hi == pytest.approx(ref.high, abs=1e-9)
    assert lo <= k / n <= hi


def test_wilson_interval_narrows_with_more_edits_and_rejects_bad_counts():
    (a, b), (c, d) = wilson_interval(9, 12), wilson_interval(90, 120)
    assert d - c < (b - a) / 2
    with pytest.raises(ValueError, match="successes"): wilson_interval(13, 12)
    for n in (6, 11, 21, 22, 48, 84, 336):    # where the formula lands 1e-16 off in floating point: the bounds are exact
        assert wilson_interval(n, n)[1] == 1.0 and wilson_interval(0, n)[0] == 0.0


def test_psnr_and_iou_on_known_values():
    a = np.zeros((4, 4, 3), np.uint8); b = a.copy(); b[0, 0] = 255      # one pixel off by 255 in 16
    assert psnr(a, b) == pytest.approx(10 * np.log10(16))
    assert psnr(a, b, mask=np.arange(16).reshape(4, 4) > 0) == float("inf")
    m = np.zeros((4, 4), bool); m[:2] = True; t = np.zeros((4, 4), bool); t[1:3] = True
    assert iou(m, t) == pytest.approx(4 / 12)
    import torch
    from PIL import Image
    x = torch.from_numpy(b).permute(2, 0, 1).double() / 127.5 - 1                    # b as a 3 x H x W tensor in [-1, 1]
    for tensor in (x, x[None]):                                                      # tensors mix with arrays and PIL images
        assert psnr(a, tensor) == pytest.approx(10 * np.log10(16))
        assert psnr(Image.fromarray(b), tensor) == float("inf")
        assert psnr(tensor, a, mask=np.arange(16).reshape(4, 4) > 0) == float("inf")


def test_mask_iou_upsamples_a_latent_mask_to_the_region():
    m = np.zeros((4, 4)); m[0, 0] = 1                                    # one latent cell = a 4x4 pixel block
    region = np.zeros((16, 16), bool); region[:4, :2] = True             # half of that block
    assert mask_iou(m, region) == pytest.approx(8 / 16)
    assert mask_iou(np.ones((4, 4)), np.ones((16, 16), bool)) == 1.0


def test_edit_scores_strict_success_needs_every_attribute():
    "An image that lands the edit but also changes the background succeeds leniently, not strictly."
    from dataclasses import replace
    from course_utils.metrics import edit_scores, held_out_edits
    from course_utils.toyworld import render, load_judge, BACKGROUNDS
    judge = load_judge()
    e = held_out_edits("color", 1, offset=4242)[0]
    exact = edit_scores(e, render(e.target).image, judge)
    assert exact["success"] and exact["lenient"] and exact["kept"] == 1.0
    other = next(b for b in BACKGROUNDS if b != e.target.background)
    spilled = edit_scores(e, render(replace(e.target, background=other)).image, judge)
    assert spilled["lenient"] and not spilled["success"] and spilled["kept"] < 1.0
    untouched = edit_scores(e, render(e.source).image, judge)
    assert not untouched["success"] and not untouched["lenient"]
    with pytest.raises(ValueError, match="the edited image is 32x32, ToyWorld's renders 64x64"):
        edit_scores(e, render(e.target).image.resize((32, 32)), judge)
    with pytest.raises(ValueError, match=r"unknown kind of edit 'colour'; choose one of \['color'"): held_out_edits("colour", 2)


def test_prompt_adherence_draws_the_same_images_whatever_the_batch_size(random_models):
    "Image i comes from seed + i alone: chunks of 2 and one batch of 5 give the same images, and the judge the same reads."
    from course_utils.metrics import held_out_scenes, prompt_adherence
    scenes = held_out_scenes(5, offset=300)
    judge = type("Reads", (), {"score": staticmethod(lambda im, s: {"mean": float(np.asarray(im).mean()) > 127})})()
    one, chunks = (prompt_adherence(random_models, judge, scenes, guidance_scale=2.0, num_inference_steps=2, batch_size=b, seed=7)
                   for b in (5, 2))
    for a, b in zip(one["images"], chunks["images"]):
        assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max() <= 1
    assert len({np.asarray(im).tobytes() for im in one["images"]}) == 5    # and each image has noise of its own
