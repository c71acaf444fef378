"""Batched LEDITS++: several images inverted together and edited with different numbers of concepts
in one UNet call per step give, image by image, what single calls give; "no edit" stays exact."""
import pytest
import torch
from course_utils.ledits import ddpm_invert, ledits_edit, EditConcept, caption_concepts
from course_utils.metrics import HELD_OUT
from course_utils.toyworld import random_scene, render
from tolerance import close, distinct


@pytest.fixture(scope="module")
def images():
    return [render(random_scene(HELD_OUT + s)).image for s in (31, 32, 33)]


CONCEPTS = [[EditConcept("a red thing on the left", scale=5, threshold=0.8)],
            [],
            [EditConcept("a thing with a hat on the right", scale=4, threshold=0.7),
             EditConcept("a thing on the right", scale=4, threshold=0.7, reverse=True)]]


@pytest.mark.parametrize("solver", ["ddpm", "dpmpp"])
def test_batched_inversion_and_edit_equal_single(random_models, images, solver):
    m = random_models
    inv = ddpm_invert(m, images, num_inversion_steps=6, skip=0.2, seed=[1, 2, 3], solver=solver, progress=False)
    assert inv.xts.shape == (7, 3, 4, 16, 16) and inv.batched
    rows = []
    h = m.unet.register_forward_hook(lambda mod, args, out: rows.append(args[0].shape[0]))
    try: ims, z, rec = ledits_edit(m, inv, CONCEPTS, record_masks=True, return_latents=True, progress=False)
    finally: h.remove()
    assert rows == [(1 + 1) + 1 + (1 + 2)] * 6, "one UNet call per step, Σ (1 + N_i) rows"
    assert len(ims) == 3 and z.shape == (3, 4, 16, 16) and [r["mask"].shape[1] for r in rec] == [1, 0, 2]
    distinct(z)
    for i, im in enumerate(images):
        one = ddpm_invert(m, im, num_inversion_steps=6, skip=0.2, seed=i + 1, solver=solver, progress=False)
        close(inv.xts[:, i:i + 1], one.xts); close(inv.zs[:, i:i + 1], one.zs)
        _, z1, rec1 = ledits_edit(m, one, CONCEPTS[i], record_masks=True, return_latents=True, progress=False)
        close(z[i:i + 1], z1)
        if CONCEPTS[i]: assert (rec[i]["mask"] != rec1["mask"]).float().mean() < 0.01   # a quantile tie may flip a cell


def test_batched_no_edit_is_exact_with_source_prompts(random_models, images):
    inv = ddpm_invert(random_models, images, source_prompt=["a red thing on the left", "", "gray background"],
                      num_inversion_steps=8, solver="dpmpp", progress=False)
    _, z = ledits_edit(random_models, inv, [], return_latents=True, progress=False)
    assert (z - inv.x0).pow(2).mean().sqrt() <= 1e-5


def test_a_tensor_of_several_images_is_a_batch(random_models, images):
    from course_utils.inversion import check_image
    x = torch.cat([check_image(random_models, im) for im in images])
    inv = ddpm_invert(random_models, x, num_inversion_steps=4, seed=[1, 2, 3], solver="dpmpp", progress=False)
    listed = ddpm_invert(random_models, images, num_inversion_steps=4, seed=[1, 2, 3], solver="dpmpp", progress=False)
    assert inv.batched and inv.xts.shape == listed.xts.shape == (5, 3, 4, 16, 16)
    close(inv.zs, listed.zs)


def test_one_concept_list_for_all_and_lists_that_do_not_line_up(random_models, images):
    inv = ddpm_invert(random_models, images[:2], num_inversion_steps=4, progress=False)
    out, z = ledits_edit(random_models, inv, ["a red thing on the left"], return_latents=True, progress=False)
    _, z_each = ledits_edit(random_models, inv, [["a red thing on the left"]] * 2, return_latents=True, progress=False)
    assert len(out) == 2 and torch.equal(z, z_each)      # one list for all = that list for each image
    with pytest.raises(ValueError, match="concepts: got 3 for 2 images"):
        ledits_edit(random_models, inv, [[], [], []], progress=False)
    with pytest.raises(ValueError, match="seed: got 2 for 3 images"):
        ddpm_invert(random_models, images, seed=[1, 2], progress=False)
    with pytest.raises(TypeError, match="not a mix of the two"):
        ledits_edit(random_models, inv, [["a hat"], "a red thing"], progress=False)
    one = ddpm_invert(random_models, images[0], num_inversion_steps=4, progress=False)
    with pytest.raises(TypeError, match="a list of lists is one list per image, for an inversion of a batch"):
        ledits_edit(random_models, one, [["a hat"], ["a red thing"]], progress=False)


def test_no_concepts_for_a_batch_and_concept_pairs_that_are_not(random_models, images):
    "concepts=None is no edit, for a batch as for one image; a (prompt, x) pair must say reverse with a bool."
    inv = ddpm_invert(random_models, images[:2], num_inversion_steps=4, seed=[1, 2], progress=False)
    _, z_none = ledits_edit(random_models, inv, None, return_latents=True, progress=False)
    _, z_empty = ledits_edit(random_models, inv, [], return_latents=True, progress=False)
    assert torch.equal(z_none, z_empty)
    with pytest.raises(TypeError, match=r"\(prompt, reverse\)"): ledits_edit(random_models, inv, [("a hat", "blue")], progress=False)
    _, z = ledits_edit(random_models, inv, [("a thing with a hat on the left", True)], return_latents=True, progress=False)
    _, z_ref = ledits_edit(random_models, inv, [EditConcept("a thing with a hat on the left", reverse=True)], return_latents=True,
                           progress=False)
    assert torch.equal(z, z_ref)


def test_unmasked_and_masked_edits_share_a_batch(random_models, images):
    """An edit by captions at guidance 1 (unmasked: ε̂ = ε(tgt), one row) beside a masked few-word edit
    (u, the source caption, the concept: three rows) and no edit (ε(src): one row), in one call per step,
    each image as it comes out alone."""
    m, srcs = random_models, ["a red thing on the left", "a blue thing on the left", "gray background"]
    concepts = [caption_concepts(srcs[0], "a green thing on the left"), [EditConcept("a hat", scale=4, threshold=0.7)], []]
    inv = ddpm_invert(m, images, source_prompt=srcs, source_guidance_scale=1.0, num_inversion_steps=5, seed=[4, 5, 6],
                      solver="dpmpp", progress=False)
    rows = []
    h = m.unet.register_forward_hook(lambda mod, args, out: rows.append(args[0].shape[0]))
    try: _, z = ledits_edit(m, inv, concepts, return_latents=True, progress=False)
    finally: h.remove()
    assert rows == [1 + 3 + 1] * 5
    distinct(z)
    assert (z[2] - inv.x0[2]).pow(2).mean().sqrt() <= 1e-5            # no edit: exact
    for i, im in enumerate(images):
        one = ddpm_invert(m, im, source_prompt=srcs[i], source_guidance_scale=1.0, num_inversion_steps=5, seed=4 + i,
                          solver="dpmpp", progress=False)
        close(z[i:i + 1], ledits_edit(m, one, concepts[i], return_latents=True, progress=False)[1])
