"""DiffEdit helpers: the mask recipe, DDIM inversion, masked decoding (no off-by-one), SDEdit, bad input."""
import numpy as np
import pytest
import torch
from PIL import Image
from course_utils.diffedit import diffedit_mask, diffedit_mask_single_prompt, diffedit, img2img, hysteresis
from course_utils.ledits import ddpm_invert
from course_utils.inversion import ddim_invert
from course_utils.metrics import HELD_OUT
from course_utils.toyworld import random_scene, render, EDITS
from tolerance import close, rel_err


@pytest.fixture(scope="module")
def edit():
    return EDITS["color"](random_scene(HELD_OUT + 3), np.random.default_rng(0))


def count_unet_calls(models):
    calls = []
    return calls, models.unet.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))


def test_mask_is_one_batched_call_in_unit_range(random_models, edit):
    calls, h = count_unet_calls(random_models)
    try: mk = diffedit_mask(random_models, render(edit.source).image, edit.source_prompt, edit.target_prompt, n=10)
    finally: h.remove()
    assert calls == [20], "n = 10 samples x (reference, query) in ONE UNet call"
    assert mk.soft.shape == mk.binary.shape == (16, 16)
    assert mk.soft.min() == 0 and mk.soft.max() == 1 and torch.equal(mk.binary, mk.soft > 0.5)
    soft, binary = mk.upsampled(64)
    assert soft.shape == binary.shape == (64, 64)


def test_mask_chunks_bound_memory_not_the_result(random_models, edit):
    im = render(edit.source).image
    calls, h = count_unet_calls(random_models)
    try: a = diffedit_mask(random_models, im, edit.source_prompt, edit.target_prompt, n=6, chunk=4)
    finally: h.remove()
    assert calls == [4, 4, 4]
    b = diffedit_mask(random_models, im, edit.source_prompt, edit.target_prompt, n=6)
    close(a.soft, b.soft)   # chunks of 4 rows and one call of 12 round differently (tolerance.py)


def test_the_soft_mask_is_the_papers_recipe_whatever_the_guidance(random_models, edit):
    """The soft map, recomputed by hand from the UNet's own 2n predictions (reference rows, then query
    rows): D = mean over samples and channels of |s (ε_Q − ε_R)|, clipped at 3 mean(D), rescaled to [0, 1].
    For every s the same map: the guidance scale cancels, which is why diffedit_mask computes none."""
    im = render(edit.source).image
    eps = []
    hook = random_models.unet.register_forward_hook(lambda mod, args, out: eps.append(out[0] if isinstance(out, tuple) else out.sample))
    try: mk = diffedit_mask(random_models, im, edit.source_prompt, edit.target_prompt, n=4)
    finally: hook.remove()
    eps_r, eps_q = torch.cat(eps).float().cpu().chunk(2)
    assert eps_r.shape == (4, 4, 16, 16)
    for s in (1.0, 3.0, 9.0):
        d = (s * (eps_q - eps_r)).abs().mean(dim=(0, 1))
        d = d.clamp(max=3 * d.mean())
        close(mk.soft, (d - d.min()) / (d.max() - d.min()), rel=1e-5)
    assert rel_err(mk.soft, (eps_q - eps_r).abs().amax(dim=(0, 1)) / (eps_q - eps_r).abs().amax()) > 0.05   # not any map will do


def test_the_threshold_cuts_the_soft_map(random_models, edit):
    "The binary mask is the soft one above the threshold (no growth); guidance_scale, taken for diffusers' parity, changes nothing."
    im = render(edit.source).image
    a = diffedit_mask(random_models, im, edit.source_prompt, edit.target_prompt, n=4, guidance_scale=3)
    b = diffedit_mask(random_models, im, edit.source_prompt, edit.target_prompt, n=4, guidance_scale=9, threshold=0.3)
    assert torch.equal(a.soft, b.soft)
    assert torch.equal(a.binary, a.soft > 0.5) and torch.equal(b.binary, b.soft > 0.3) and b.binary.sum() > a.binary.sum()


def test_single_prompt_variant_is_batched_too(random_models, edit):
    calls, h = count_unet_calls(random_models)
    try: mk = diffedit_mask_single_prompt(random_models, render(edit.source).image, edit.target_prompt, n=10)
    finally: h.remove()
    assert calls == [20] and mk.soft.shape == (16, 16) and mk.soft.max() == 1


def test_ddim_inversion_shapes_and_timesteps(random_models, edit):
    inv = ddim_invert(random_models, render(edit.source).image, num_inference_steps=20, ratio=0.5, progress=False)
    assert inv.latents.shape == (11, 1, 4, 16, 16)
    assert inv.timesteps.tolist() == sorted(inv.timesteps.tolist()) and len(inv.timesteps) == 10
    assert torch.equal(inv.at(0), inv.latents[0]) and torch.equal(inv.at(inv.timesteps[-1]), inv.noisiest)
    with pytest.raises(KeyError): inv.at(999)


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction"])
def test_ddim_inversion_is_diffusers_inverse_scheduler(random_models, edit, kind):
    "ε- and v-predicting models (SD 1.x, SD 2.x at 768) alike: every inverted latent is diffusers' DDIMInverseScheduler's."
    import dataclasses
    from diffusers import DDIMInverseScheduler, DDIMScheduler
    from course_utils.inversion import encode_image
    from course_utils.text import encode_prompt
    m = dataclasses.replace(random_models, scheduler=DDIMScheduler.from_config(random_models.scheduler.config, prediction_type=kind))
    im = render(edit.source).image
    inv = ddim_invert(m, im, num_inference_steps=20, ratio=0.5, progress=False)
    ref = DDIMInverseScheduler.from_config(m.scheduler.config)
    ref.set_timesteps(20)
    z, emb = encode_image(m, im), encode_prompt(m, [""])
    assert ref.timesteps[:10].tolist() == inv.timesteps.tolist()
    with torch.no_grad():
        for k, t in enumerate(ref.timesteps[:10]):
            z = ref.step(m.unet(z, t, encoder_hidden_states=emb).sample, t, z).prev_sample
            close(inv.latents[k + 1], z, 1e-5)


def test_ddim_inversion_then_decoding_reconstructs(toy):
    "DDIM encoding is (nearly) invertible: decoding the inverted latents with the same prompt comes back."
    im = render(random_scene(HELD_OUT + 11)).image
    inv = ddim_invert(toy, im, num_inference_steps=50, ratio=0.6, progress=False)
    _, z = diffedit(toy, im, "", np.ones((16, 16), bool), ratio=0.6, guidance_scale=1.0, inversion=inv,
                    return_latents=True, progress=False)
    err = (z - inv.latents[0]).pow(2).mean().sqrt() / inv.latents[0].pow(2).mean().sqrt()
    assert err < 0.1, f"relative latent RMSE {err:.3f}"


def test_outside_the_mask_is_the_inversion_of_the_same_timestep(random_models, edit, monkeypatch):
    "With an empty mask, every step's latents ARE the inverted latents of that step's timestep."
    im = render(edit.source).image
    inv = ddim_invert(random_models, im, num_inference_steps=10, ratio=0.8, progress=False)
    seen = spy_steps(monkeypatch)
    _, z = diffedit(random_models, im, edit.target_prompt, np.zeros((16, 16), bool), ratio=0.8,
                    num_inference_steps=10, inversion=inv, return_latents=True, progress=False)
    K = len(inv.timesteps)
    assert len(seen) == K
    for i, s in enumerate(seen): assert torch.equal(s, inv.latents[K - 1 - i])
    assert torch.equal(z, inv.latents[0])


def test_a_longer_inversion_serves_every_smaller_ratio_exactly(random_models, edit):
    "DDIM inversion is deterministic: the first steps of one to 0.9 are the inversion to 0.3 or 0.5, bit for bit."
    im, mask = render(edit.source).image, np.zeros((16, 16), bool)
    mask[4:12, 2:9] = True
    long = ddim_invert(random_models, im, num_inference_steps=10, ratio=0.9, progress=False)
    for r in (0.3, 0.5, 0.9):
        own = ddim_invert(random_models, im, num_inference_steps=10, ratio=r, progress=False)
        assert torch.equal(long.latents[:len(own.timesteps) + 1], own.latents)
        _, z_long = diffedit(random_models, im, edit.target_prompt, mask, ratio=r, num_inference_steps=10, inversion=long,
                             return_latents=True, progress=False)
        _, z_own = diffedit(random_models, im, edit.target_prompt, mask, ratio=r, num_inference_steps=10, inversion=own,
                            return_latents=True, progress=False)
        assert torch.equal(z_long, z_own), r
    with pytest.raises(ValueError, match="other steps"):        # the same ratio of another N is not a prefix
        diffedit(random_models, im, edit.target_prompt, mask, ratio=0.5, num_inference_steps=12, inversion=long)


def spy_steps(monkeypatch):
    "Every step's latents as diffedit's masked decoding leaves them (after the blend)."
    seen = []
    from course_utils import sampling
    orig = sampling.denoise
    def spy(*a, callback=None, **k):
        def cb(i, t, z):
            out = callback(i, t, z) if callback else None
            seen.append((z if out is None else out).clone()); return out
        return orig(*a, callback=cb, **k)
    monkeypatch.setattr("course_utils.diffedit.denoise", spy)
    return seen


def test_clean_blend_puts_back_the_clean_latents_and_no_blend_ignores_the_mask(random_models, edit, monkeypatch):
    im, empty = render(edit.source).image, np.zeros((16, 16), bool)
    inv = ddim_invert(random_models, im, num_inference_steps=10, ratio=0.8, progress=False)
    seen = spy_steps(monkeypatch)
    _, z = diffedit(random_models, im, edit.target_prompt, empty, blend="clean", num_inference_steps=10, inversion=inv,
                    return_latents=True, progress=False)
    assert len(seen) == 8 and all(torch.equal(s, inv.latents[0]) for s in seen)   # the clean latents at every step
    seen.clear()
    _, z_none = diffedit(random_models, im, edit.target_prompt, empty, blend="none", num_inference_steps=10, inversion=inv,
                         return_latents=True, progress=False)
    assert rel_err(z_none, inv.latents[0]) > 0.1                                  # an empty mask kept nothing
    mask = np.zeros((16, 16), bool); mask[4:12, 2:9] = True
    _, z_clean = diffedit(random_models, im, edit.target_prompt, mask, blend="clean", num_inference_steps=10, inversion=inv,
                          return_latents=True, progress=False)
    _, z_inv = diffedit(random_models, im, edit.target_prompt, mask, blend="inverted", num_inference_steps=10, inversion=inv,
                        return_latents=True, progress=False)
    inside = torch.as_tensor(mask)
    assert torch.equal(z_clean[..., ~inside], z_inv[..., ~inside])               # both end on the clean latents outside
    assert rel_err(z_clean[..., inside], z_inv[..., inside]) > 0.01                # inside, what each kept around it shows


@pytest.mark.parametrize("strength", [0.6, 0.3, 0.75])
def test_img2img_is_diffusers_img2img_pipeline(random_models, edit, strength):
    """SDEdit = diffusers' StableDiffusionImg2ImgPipeline handed the same clean latents and seed (DDIM, guidance 7.5),
    the steps counted as it counts them: int(N · strength), 3 of 10 at 0.3 and 7 at 0.75 (rounding would give 8)."""
    from diffusers import StableDiffusionImg2ImgPipeline
    from course_utils.inversion import encode_image, sampling_timesteps
    im = render(edit.source).image
    assert len(sampling_timesteps(random_models, 10, strength)) == int(10 * strength)
    _, z = img2img(random_models, im, edit.target_prompt, strength=strength, num_inference_steps=10, seed=3, return_latents=True,
                   progress=False)
    pipe = random_models.pipeline(StableDiffusionImg2ImgPipeline)
    ref = pipe(edit.target_prompt, image=encode_image(random_models, im), strength=strength, num_inference_steps=10,
               guidance_scale=7.5, generator=torch.Generator().manual_seed(3), output_type="latent").images
    close(z, ref)
    if strength != 0.6: return
    _, other = img2img(random_models, im, edit.target_prompt, strength=0.6, num_inference_steps=10, seed=4, return_latents=True,
                       progress=False)
    assert rel_err(other, ref) > 0.1                                               # the seed is the noise


def test_bad_input_says_what_to_do(random_models, edit):
    im = render(edit.source).image
    m = random_models
    with pytest.raises(ValueError, match="expected a 64x64 image, got 32x32"): diffedit_mask(m, im.resize((32, 32)), "a", "b")
    with pytest.raises(ValueError, match="RGB"): diffedit_mask(m, im.convert("L"), "a", "b")
    with pytest.raises(ValueError, match="empty"): diffedit_mask(m, im, [], "b")
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\), got 1.5"): diffedit_mask(m, im, "a", "b", threshold=1.5)
    with pytest.raises(ValueError, match="strength"): diffedit_mask(m, im, "a", "b", strength=0)
    with pytest.raises(ValueError, match=r"ratio must be in \(0, 1\], got 1.2"): ddim_invert(m, im, ratio=1.2)
    with pytest.raises(ValueError, match="ratio"): diffedit(m, im, "b", np.zeros((16, 16)), ratio=0)
    with pytest.raises(ValueError, match="unknown blend"): diffedit(m, im, "b", np.zeros((16, 16)), blend="soft")
    calls = []
    hook = m.unet.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(ValueError, match="mask must be 16x16"): diffedit(m, im, "b", np.zeros((1, 16, 16)), num_inference_steps=4)
        with pytest.raises(ValueError, match="mask: got 1 for 2 images"): diffedit(m, [im, im], "b", [np.zeros((16, 16))])
        with pytest.raises(ValueError, match=r"strength must be in \(0, 1\], got 1.5"): img2img(m, im, "b", strength=1.5)
    finally: hook.remove()
    assert not calls, "a bad mask or strength is refused before the UNet runs (no inversion first)"
    inv = ddim_invert(m, im, num_inference_steps=10, ratio=0.5, progress=False)
    with pytest.raises(ValueError, match="other steps"): diffedit(m, im, "b", np.zeros((16, 16)), inversion=inv, ratio=0.8, num_inference_steps=10)
    with pytest.raises(TypeError, match="inversion must come from ddim_invert"):
        diffedit(m, im, "b", np.zeros((16, 16)), inversion=ddpm_invert(m, im, num_inversion_steps=3, progress=False))
    with pytest.raises(TypeError, match="query_prompt must be a str or a list of str, got int"): diffedit(m, im, 3, np.zeros((16, 16)))


def test_latent_mask_marks_the_cells_a_pixel_mask_covers_mostly():
    from course_utils.diffedit import latent_mask, DiffEditMask
    like = torch.zeros(1, 4, 16, 16, dtype=torch.float64)
    px = np.zeros((64, 64), bool)
    px[:8, :12] = True                                    # cells (0..1, 0..2) fully
    px[8:10, :4] = True                                   # half of cell (2, 0): not most of it
    m = latent_mask(px, like)
    assert m.shape == (1, 1, 16, 16) and m.dtype == like.dtype
    expected = torch.zeros(16, 16); expected[:2, :3] = 1
    assert torch.equal(m[0, 0].float(), expected)
    expected[2, 0] = 1                                    # cover=0: every cell it touches
    assert torch.equal(latent_mask(px, like, cover=0)[0, 0].float(), expected)
    grid = torch.rand(16, 16) > 0.5                        # a latent-grid mask passes through as it is
    assert torch.equal(latent_mask(grid, like)[0, 0].bool(), grid)
    soft = torch.rand(16, 16)
    assert torch.equal(latent_mask(DiffEditMask(soft, soft > 0.3, 0.3), like)[0, 0].bool(), soft > 0.3)


def test_masks_take_a_threshold_per_image(random_models, edit):
    im, m = render(edit.source).image, random_models
    a, b = diffedit_mask(m, [im, im], edit.source_prompt, edit.target_prompt, n=2, threshold=[0.5, 0.05])
    assert torch.allclose(a.soft, b.soft) and (a.threshold, b.threshold) == (0.5, 0.05)
    assert torch.equal(a.binary, a.soft > 0.5) and torch.equal(b.binary, b.soft > 0.05)
    (c,) = diffedit_mask_single_prompt(m, [im], edit.target_prompt, n=2, threshold=[0.05])
    assert c.threshold == 0.05 and torch.equal(c.binary, c.soft > 0.05)
    d, e = diffedit_mask(m, [im, im], edit.source_prompt, edit.target_prompt, n=2, grow=[None, 0.2])
    assert torch.equal(d.binary, a.binary) and d.grow is None and e.grow == 0.2
    assert torch.equal(e.binary, hysteresis(e.soft, 0.5, 0.2)) and (e.binary >= a.binary).all()
    assert torch.equal(e.upsampled(64)[1], hysteresis(e.upsampled(64)[0], 0.5, 0.2))
    with pytest.raises(ValueError, match="grow"): diffedit_mask(m, im, "a", "b", grow=0.6)
    with pytest.raises(ValueError, match="threshold"): diffedit_mask(m, [im, im], "a", "b", threshold=[0.5, 0])
    with pytest.raises(ValueError, match="threshold: got 1 for 2 images"): diffedit_mask(m, [im, im], "a", "b", threshold=[0.5])


def test_toy_diffedit_options_read_what_changes_from_the_captions():
    from course_utils.metrics import held_out_edits
    from course_utils.toyworld import diffedit_change, diffedit_mask_options, TOY_DIFFEDIT_MASK
    want = dict(color="object", texture="object", shape="object", color_and_accessory="object",
                add_accessory="accessory", remove_accessory="accessory", background="background")
    assert set(want) == set(EDITS)
    for kind in EDITS:
        for e in held_out_edits(kind, 12, offset=40):   # a hat added or removed where the other object wears one too
            assert diffedit_change(e.source_prompt, e.target_prompt) == want[kind], e
            assert diffedit_mask_options(e.source_prompt, e.target_prompt) == TOY_DIFFEDIT_MASK[want[kind]]
    # a re-worded target (lesson 6's playground) that leaves the background out keeps it: a colour is an object change
    src = "a red plain circle on the left, a blue plain square with a hat on the right, white background"
    assert diffedit_change(src, "a green plain circle on the left, a blue plain square with a hat on the right") == "object"
    assert diffedit_change(src, "a thing on the left, sand background") == "background"


def test_hysteresis_grows_through_connected_weak_cells_only():
    soft = torch.tensor([[0.9, 0.3, 0.3, 0.0, 0.3],
                         [0.0, 0.0, 0.3, 0.0, 0.0],
                         [0.0, 0.0, 0.0, 0.3, 0.0],    # diagonal neighbours connect
                         [0.3, 0.0, 0.0, 0.0, 0.0],    # a weak cell on its own stays out
                         [0.0, 0.0, 0.0, 0.0, 0.6]])
    strong = soft > 0.5
    assert torch.equal(hysteresis(soft, 0.5), strong) and torch.equal(hysteresis(soft, 0.5, None), strong)
    want = strong.clone()
    for i, j in [(0, 1), (0, 2), (1, 2), (2, 3)]: want[i, j] = True
    assert torch.equal(hysteresis(soft, 0.5, 0.2), want)
    assert torch.equal(hysteresis(soft, 0.5, 0.3), strong)     # strictly above, as the threshold
    assert torch.equal(hysteresis(soft, 0.5, 0.0), want)      # grow 0: the isolated weak cells still stay out
