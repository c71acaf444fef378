"""What the trained tiny model can do, measured on held-out ToyWorld scenes and edits.

These tests assert behaviour — guidance that works, masks that find the object, edits that land,
reconstructions that are exact — with bars well under what `benchmarks/` measures on more
samples, so that they are stable, yet fail if the model or a helper breaks."""
import numpy as np
from course_utils.diffedit import diffedit_mask, diffedit
from course_utils.metrics import held_out_scenes, held_out_edits, prompt_adherence, edit_scores, iou, psnr
from course_utils.toyworld import toy_ledits
from course_utils.latents import image_to_latents, latents_to_pil
from course_utils.toyworld import render, load_judge
import pytest

# Bars, each below the value measured on these very samples (in brackets; the shipped model, 2026-12-06).
# Success is strict (every attribute of the target read right, and closer to the target inside the region;
# metrics.edit_scores); the lenient rate (only the changed attributes) has its own bar where the two differ.
VAE_PSNR = 29.0          # [31.7 dB]
ADHERENCE = 0.95         # [1.000 of attributes right at s = 5; 0.963 at s = 1]
MASK_IOU = 0.5           # [0.67]
DIFFEDIT_SUCCESS = 0.8   # [12 / 12 strict: two edits of room]
DIFFEDIT_PSNR = 27.0     # [30.6 dB]
DIFFEDIT_HARD = 0.8      # [24 / 24 shapes and double edits, strict, with the tiny model's mask options]
DIFFEDIT_HARD_PSNR = 28.0  # [29.7 dB]
LEDITS_SUCCESS = 0.7     # [23 / 24 colour edits strict, named by captions (0.92 of 48 in benchmarks/editors.py)]
LEDITS_LENIENT = 0.85    # [24 / 24]
LEDITS_PSNR = 29.0       # [31.8 dB]
LEDITS_ACCESSORY = 0.75  # [12 / 12 accessories added or removed, strict]
LEDITS_ACCESSORY_PSNR = 28.0  # [29.9 dB]
LEDITS_HARD = 0.75       # [34 / 36 shapes, backgrounds and double edits, strict (12, 11, 11 of 12)]


@pytest.fixture(scope="module")
def judge(): return load_judge()


def test_vae_reconstructs_held_out_renders(toy):
    renders = [render(s).image for s in held_out_scenes(32, offset=200)]
    recs = latents_to_pil(toy, image_to_latents(toy, renders))
    assert np.mean([psnr(r, x) for r, x in zip(recs, renders)]) > VAE_PSNR


def test_guidance_improves_prompt_adherence(toy, judge):
    scenes = held_out_scenes(24, offset=300)
    plain = prompt_adherence(toy, judge, scenes, guidance_scale=1.0, num_inference_steps=20)
    guided = prompt_adherence(toy, judge, scenes, guidance_scale=5.0, num_inference_steps=20)
    assert guided["attribute_accuracy"] >= ADHERENCE
    assert guided["all_right"] > plain["all_right"]  # [24 vs 17 of 24 images with all 9 attributes right]
    assert guided["per_attribute"]["background"] > 0.9


def test_diffedit_mask_finds_the_object(toy):
    edits = held_out_edits("color", 8, offset=400)
    ious = [iou(diffedit_mask(toy, render(e.source).image, e.source_prompt, e.target_prompt).upsampled(64)[1].numpy(), e.region)
            for e in edits]
    assert np.mean(ious) > MASK_IOU


def test_diffedit_recolours_and_preserves(toy, judge):
    edits = held_out_edits("color", 12, offset=500)
    ims, queries = [render(e.source).image for e in edits], [e.target_prompt for e in edits]
    masks = diffedit_mask(toy, ims, [e.source_prompt for e in edits], queries)            # one batch
    out = diffedit(toy, ims, queries, masks, ratio=0.8, num_inference_steps=25, progress=False)
    scores = [edit_scores(e, im, judge) for e, im in zip(edits, out)]
    assert np.mean([s["success"] for s in scores]) >= DIFFEDIT_SUCCESS
    assert np.mean([s["psnr_outside"] for s in scores]) > DIFFEDIT_PSNR


def test_diffedit_with_the_tiny_models_mask_options_lands_shapes_and_double_edits(toy, judge):
    from course_utils.toyworld.compare import compare
    edits = held_out_edits("color_and_accessory", 12, offset=1_000) + held_out_edits("shape", 12, offset=1_100)
    (row,) = compare(toy, judge, edits, ["DiffEdit"], progress=False)     # grown by hysteresis: diffedit_mask_options
    assert row["success"] >= DIFFEDIT_HARD and row["psnr_outside"] > DIFFEDIT_HARD_PSNR


def _ledits_scores(toy, judge, edits):
    "Invert the edits' sources with their captions, edit them to the target captions (one batch), score them against the ground truth."
    return [edit_scores(e, im, judge) for e, im in zip(edits, toy_ledits(toy, edits))]


def test_ledits_recolours_where_it_belongs(toy, judge):
    scores = _ledits_scores(toy, judge, held_out_edits("color", 24, offset=600))
    assert np.mean([s["success"] for s in scores]) >= LEDITS_SUCCESS
    assert np.mean([s["lenient"] for s in scores]) >= LEDITS_LENIENT
    assert np.mean([s["psnr_outside"] for s in scores]) > LEDITS_PSNR


def test_ledits_adds_and_removes_accessories(toy, judge):
    scores = _ledits_scores(toy, judge, held_out_edits("add_accessory", 6, offset=800) +
                            held_out_edits("remove_accessory", 6, offset=900))
    assert np.mean([s["success"] for s in scores]) >= LEDITS_ACCESSORY
    assert np.mean([s["psnr_outside"] for s in scores]) > LEDITS_ACCESSORY_PSNR


def test_ledits_changes_shapes_backgrounds_and_two_things_at_once(toy, judge):
    "The kinds the few-word concepts never managed (held out: shape 0.38, background 0.17, double 0.50 of 48)."
    edits = [e for kind in ("shape", "background", "color_and_accessory") for e in held_out_edits(kind, 12, offset=700)]
    assert np.mean([s["success"] for s in _ledits_scores(toy, judge, edits)]) >= LEDITS_HARD
