"""Rows per call bounded by memory (chunks.py): out of GPU memory, a call goes on in halves and gives
what one call gives; `models.max_rows` set by hand bounds every UNet and VAE call.

A CPU has no GPU memory to run out of, so a forward pre-hook plays the card: it raises torch's
OutOfMemoryError whenever a call has more rows than it "holds", and records the rows of every call."""
import dataclasses
from contextlib import contextmanager
import pytest
import torch
from course_utils import generate
from course_utils.chunks import in_chunks
from course_utils.diffedit import diffedit_mask, diffedit
from course_utils.latents import image_to_latents, latents_to_images
from course_utils.ledits import ddpm_invert, ledits_edit, EditConcept
from course_utils.metrics import HELD_OUT
from course_utils.toyworld import random_scene, render
from tolerance import close


@contextmanager
def card(module, holds: int):
    "`module` raises OutOfMemoryError on calls of more than `holds` rows; yields the row counts of the calls that ran."
    ran = []
    def hook(mod, args):
        n = args[0].shape[0]
        if n > holds: raise torch.OutOfMemoryError(f"CUDA out of memory (test: {n} rows > {holds})")
        ran.append(n)
    h = module.register_forward_pre_hook(hook)
    try: yield ran
    finally: h.remove()


def fresh(m):
    "The same modules with no bound learned yet (the session's models stay as they are)."
    return dataclasses.replace(m, max_rows={})


@pytest.fixture(scope="module")
def images():
    return [render(random_scene(HELD_OUT + s)).image for s in (41, 42, 43)]


def test_generate_goes_on_in_halves_and_remembers(random_models):
    m = fresh(random_models)
    prompts = ["a red circle on the left", "a green square on the right", "gray background"]
    whole = generate(m, prompts, num_inference_steps=3, seed=[1, 2, 3], return_latents=True, progress=False)[1]
    with card(m.unet, holds=4) as ran, pytest.warns(RuntimeWarning, match=r"going on with at most 3 rows per call"):
        halves = generate(m, prompts, num_inference_steps=3, seed=[1, 2, 3], return_latents=True, progress=False)[1]
    assert m.max_rows["unet"] == 3 and ran == [3, 3] * 3, "6 rows (CFG) failed once, then two calls of 3 a step"
    close(halves, whole)
    with card(m.unet, holds=3) as ran:   # the bound is kept: no failed call, no warning
        generate(m, prompts, num_inference_steps=2, seed=[1, 2, 3], progress=False)
    assert ran == [3, 3] * 2


def test_diffedit_mask_and_edit_by_hand_bound(random_models, images):
    m = fresh(random_models)
    src, tgt = "a red circle on the left", "a blue circle on the left"
    kw = dict(n=4, num_inference_steps=10)
    whole = diffedit_mask(m, images, src, tgt, **kw)
    _, z_whole = diffedit(m, images, tgt, [w.binary for w in whole], num_inference_steps=10, return_latents=True, progress=False)
    m.max_rows["unet"] = 5
    with card(m.unet, holds=5) as ran:
        masks = diffedit_mask(m, images, src, tgt, **kw)
        _, z = diffedit(m, images, tgt, [w.binary for w in masks], num_inference_steps=10, return_latents=True, progress=False)
    assert ran[:5] == [5, 5, 5, 5, 4], "the mask: 2 x 4 x 3 = 24 rows in calls of at most 5"
    assert max(ran) == 5
    for a, b in zip(masks, whole):
        close(a.soft, b.soft); assert (a.binary != b.binary).float().mean() < 0.01
    close(z, z_whole)


def test_ledits_masks_and_edit_in_halves(random_models, images):
    "The masked edit reads cross-attention maps from every call: in pieces, each piece's maps go with its rows."
    m = fresh(random_models)
    inv = ddpm_invert(m, images, num_inversion_steps=4, seed=[1, 2, 3], progress=False)
    concepts = [[EditConcept("a red thing on the left", scale=5, threshold=0.8)], [],
                [EditConcept("a thing with a hat on the right", scale=4, threshold=0.7),
                 EditConcept("a thing on the right", scale=4, threshold=0.7, reverse=True)]]
    _, z_whole, rec_whole = ledits_edit(m, inv, concepts, record_masks=True, return_latents=True, progress=False)
    with card(m.unet, holds=4) as ran, pytest.warns(RuntimeWarning, match="unet call"):
        inv2 = ddpm_invert(m, images, num_inversion_steps=4, seed=[1, 2, 3], progress=False)
        _, z, rec = ledits_edit(m, inv2, concepts, record_masks=True, return_latents=True, progress=False)
    assert m.max_rows["unet"] == 3 and max(ran) == 3            # the edit's 2 + 1 + 3 = 6 rows: 3 + 3
    close(inv2.xts, inv.xts); close(z, z_whole)
    for r, r1 in zip(rec, rec_whole):
        for kind in r:   # image 1 has no concept, so no masks
            assert r[kind].shape == r1[kind].shape and (r[kind] != r1[kind]).sum() <= 0.01 * r[kind].numel()


def test_vae_encode_and_decode_in_pieces(random_models, images):
    m = fresh(random_models)
    g = lambda: torch.Generator().manual_seed(0)
    mean, drawn = image_to_latents(m, images), image_to_latents(m, images, sample=True, generator=g())
    decoded = latents_to_images(m, mean)
    with card(m.vae.encoder, holds=1) as enc, card(m.vae.decoder, holds=2) as dec, pytest.warns(RuntimeWarning, match="out of GPU memory in a"):
        close(image_to_latents(m, images), mean)
        close(image_to_latents(m, images, sample=True, generator=g()), drawn)   # one draw for the batch, as before
        close(latents_to_images(m, mean), decoded)
    assert m.max_rows["vae"] == 1 and enc == [1] * 6 and dec == [1] * 3


def test_only_running_out_of_memory_splits_a_call(random_models):
    "Apple's MPS says it ran out in a RuntimeError: split. Any other error (a bug, a shape) goes straight up."
    m = fresh(random_models)
    def call(i, j, fail_above, error):
        if j - i > fail_above: raise error
        return torch.arange(i, j)
    with pytest.warns(RuntimeWarning, match="out of GPU memory in a"):
        got = in_chunks(m, "unet", lambda i, j: call(i, j, 2, RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)")), 5)
    assert got.tolist() == [0, 1, 2, 3, 4] and m.max_rows["unet"] == 2
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        in_chunks(m, "vae", lambda i, j: call(i, j, 2, RuntimeError("mat1 and mat2 shapes cannot be multiplied")), 5)
    assert "vae" not in m.max_rows


def test_a_model_that_does_not_fit_one_row_still_fails(random_models, images):
    m = fresh(random_models)
    with card(m.unet, holds=0), pytest.warns(RuntimeWarning, match="out of GPU memory in a"), pytest.raises(torch.OutOfMemoryError):
        generate(m, ["a red circle on the left"], num_inference_steps=2, progress=False)
    assert m.max_rows["unet"] == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@torch.no_grad()
def test_a_real_out_of_memory_on_a_gpu():
    """On a GPU whose memory is capped (torch's per-process fraction) at about ten rows' worth, a call of
    32 rows of SD 1.5's real UNet (random float16 weights) at 64x64 latents runs out for real, goes on in
    halves, and gives what calls of 4 rows give (to float16's batch-size rounding)."""
    from types import SimpleNamespace
    from course_utils.chunks import unet_eps
    from course_utils.models import random_sd15
    torch.manual_seed(0)
    m = SimpleNamespace(unet=random_sd15(torch.float16, "cuda")[0], max_rows={})
    g = torch.Generator("cuda").manual_seed(0)
    x = torch.randn(32, 4, 64, 64, generator=g, device="cuda", dtype=torch.float16)
    emb = torch.randn(32, 77, m.unet.config.cross_attention_dim, generator=g, device="cuda", dtype=torch.float16)
    t = torch.tensor(500, device="cuda")
    torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    by_four = unet_eps(m, x, t, emb, rows=4)
    per_four = torch.cuda.max_memory_allocated() - base           # ~0.25 GB on an H100 (measured: ~60 MB a row)
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction((torch.cuda.memory_allocated() + 2.5 * per_four) / total)
    try:
        with pytest.warns(RuntimeWarning, match="out of GPU memory"):
            eps = unet_eps(m, x, t, emb)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert m.max_rows["unet"] in (4, 8) and eps.shape == x.shape and torch.isfinite(eps).all()
    close(eps, by_four, rel=2e-2)
