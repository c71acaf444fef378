"""Lesson 1's helpers: guidance rules, prompt encoding, image <-> latents, and the sampling loop,
checked against diffusers' StableDiffusionPipeline on the same weights."""
import os
os.environ["HF_HUB_OFFLINE"] = "1"
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from course_utils import load_models, generate
from course_utils.toyworld import model as toymodel
from course_utils.guidance import cfg, rescaled_guidance, guide
from course_utils.latents import pil_to_tensor, tensor_to_pil, image_to_latents, latents_to_images
from course_utils.text import encode_cfg_prompts, tokenize
from course_utils.toyworld import random_scene, render
from tolerance import close, rel_err

PATH = Path(os.environ.get("TOY_SD_PATH", toymodel.TOY_PATH))
needs_model = pytest.mark.skipif(not (PATH / "model_index.json").exists(), reason=f"no model at {PATH}")


def test_cfg_is_the_affine_rule():
    u, c = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    assert torch.allclose(cfg(u, c, 1.0), c, atol=1e-6) and torch.equal(cfg(u, c, 0.0), u)
    assert torch.allclose(cfg(u, c, 7.5), u + 7.5 * (c - u))


def test_rescaled_guidance_keeps_the_norm_of_u_per_image():
    u, c = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    u[1] *= 10  # images of different norms must not influence each other
    for g in (0.15, -0.15, 3.0):
        e = rescaled_guidance(u, c, g)
        assert torch.allclose(e.flatten(1).norm(dim=1), u.flatten(1).norm(dim=1), rtol=1e-5)
        alone = rescaled_guidance(u[:1], c[:1], g)
        assert torch.allclose(e[:1], alone, atol=1e-6)
    # +g and -g move to opposite sides of u along (c - u)
    d = (c - u).flatten(1)
    assert ((rescaled_guidance(u, c, 0.15) - u).flatten(1) * d).sum(1).gt(0).all()
    assert ((rescaled_guidance(u, c, -0.15) - u).flatten(1) * d).sum(1).lt(0).all()


def test_rescaled_guidance_in_float16_survives_c_equal_to_u():
    "A prompt that is its own negative: c = u, so (c - u)/||c - u|| is 0/0 unless worked in float32. Then e = u."
    u = torch.randn(2, 4, 8, 8).half()
    for g in (0.15, 1.0):
        e = rescaled_guidance(u, u.clone(), g)
        assert e.dtype == torch.float16 and torch.isfinite(e).all() and torch.allclose(e.float(), u.float(), atol=1e-3)
    c = torch.randn(2, 4, 8, 8).half()
    close(rescaled_guidance(u, c, 0.15).float(), rescaled_guidance(u.float(), c.float(), 0.15))


def test_a_prompt_longer_than_the_encoder_reads_warns_what_is_cut(random_models):
    "Exactly 32 tokens: read whole, no warning; 35: the warning names the three words cut, and points at the caller."
    import warnings
    from course_utils.text import tokenize, encode_prompt
    words = ["red", "blue", "green", "circle", "square", "triangle"] * 6
    fits = " ".join(words[:30])                              # <start> + 30 words + <end> = 32 tokens
    long = " ".join(words[:33])                              # 35: 'red blue green' (the 31st-33rd words) are cut
    assert len(random_models.tokenizer(long).input_ids) == 35
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids = tokenize(random_models, [fits, "gray background"])
        from course_utils.toyworld import random_scene
        tokenize(random_models, [random_scene(i).caption for i in range(300)])   # ToyWorld's captions: read whole
    assert ids.shape == (2, 32) and ids[0, -1] == random_models.tokenizer.eos_token_id
    with pytest.warns(UserWarning, match=r"is 35 tokens, over the 32 the text encoder reads: 'red blue green' is cut off") as w:
        ids = tokenize(random_models, ["gray background", long])
    assert torch.equal(ids[1], tokenize(random_models, [fits])[0]) and w[0].filename == __file__
    with pytest.warns(UserWarning, match="is cut off") as w:
        encode_prompt(random_models, long)                  # through a torch.no_grad wrapper: still the caller's line
    assert w[0].filename == __file__


def test_guide_rejects_unknown_rules():
    with pytest.raises(ValueError, match="unknown guidance 'magic'"): guide(torch.zeros(1), torch.zeros(1), 1, "magic")


def test_pil_tensor_round_trip_and_bad_input():
    im = render(random_scene(0)).image
    x = pil_to_tensor(im, size=64)
    assert x.shape == (1, 3, 64, 64) and -1 <= x.min() and x.max() <= 1
    assert tensor_to_pil(x)[0].tobytes() == im.tobytes()
    with pytest.raises(ValueError, match="expected a 64x64 image, got 32x32"): pil_to_tensor(im.resize((32, 32)), size=64)
    with pytest.raises(ValueError, match="RGB"): pil_to_tensor(im.convert("L"))


@pytest.fixture(scope="module")
def models():
    return load_models(str(PATH), device="cpu")


@pytest.fixture(scope="module")
def pipe(models):
    return models.pipeline()


@needs_model
def test_prompt_encoding_batches_uncond_then_cond(models, pipe):
    "[negative ; prompts] in order, each row as diffusers' own encode_prompt gives it (the empty prompt by default)."
    prompts = ["a red circle on the left", "gray background"]
    emb = encode_cfg_prompts(models, prompts)
    assert emb.shape == (4, models.tokenizer.model_max_length, models.text_encoder.config.hidden_size)
    cond, uncond = pipe.encode_prompt(prompts, "cpu", 1, True)
    assert torch.allclose(emb[:2], uncond, atol=1e-6) and torch.allclose(emb[2:], cond, atol=1e-6)
    cond, neg = pipe.encode_prompt(prompts, "cpu", 1, True, negative_prompt=["a hat", "sand background"])
    assert torch.allclose(encode_cfg_prompts(models, prompts, ["a hat", "sand background"]), torch.cat([neg, cond]), atol=1e-6)
    with pytest.raises(ValueError, match="empty"): encode_cfg_prompts(models, [])
    with pytest.raises(ValueError, match="2 negative prompts for 3 prompts"):
        encode_cfg_prompts(models, ["a", "b", "c"], negative_prompt=["x", "y"])
    assert tokenize(models, "red").shape == (1, models.tokenizer.model_max_length)


@needs_model
def test_vae_round_trip_uses_the_scaling_factor(models):
    im = render(random_scene(10_000_001)).image
    z = image_to_latents(models, im)
    assert z.shape == (1, 4, 16, 16)
    raw = models.vae.encode(pil_to_tensor(im)).latent_dist.mean
    assert torch.allclose(z, raw * models.vae.config.scaling_factor)
    x = latents_to_images(models, z)
    assert x.shape == (1, 3, 64, 64)
    assert torch.allclose(x, models.vae.decode(z / models.vae.config.scaling_factor).sample.clamp(-1, 1))


@needs_model
@pytest.mark.parametrize("prompts,negative,scale", [
    (["a red plain circle on the left, a blue striped square on the right, gray background"], None, 7.5),
    (["a green plain triangle with a hat on the left, a yellow plain circle on the right, sky background",
      "a purple striped square on the left, a red plain triangle with sunglasses on the right, white background"], None, 4.0),
    (["a blue plain circle on the left, a green plain square on the right, sand background"], "a thing with a hat on the left", 5.0),
    (["a red plain square on the left, a red plain square on the right, white background"] * 2, ["gray background", "striped"], 3.0),
])
def test_generate_reproduces_stable_diffusion_pipeline(models, pipe, prompts, negative, scale):
    steps = 12
    neg_ref = [negative] * len(prompts) if isinstance(negative, str) else negative  # the pipeline wants a list
    ref = pipe(prompts, negative_prompt=neg_ref, guidance_scale=scale, num_inference_steps=steps,
               generator=torch.Generator().manual_seed(3), output_type="latent").images
    images, ours = generate(models, prompts, negative_prompt=negative, guidance_scale=scale, num_inference_steps=steps,
                            seed=3, return_latents=True, progress=False)
    assert ours.shape == ref.shape == (len(prompts), 4, 16, 16)
    assert (ours - ref).abs().max().item() <= 1e-4
    assert len(images) == len(prompts) and all(isinstance(i, Image.Image) and i.size == (64, 64) for i in images)


@needs_model
def test_generate_is_seeded_and_rescaled_rule_runs(models):
    a = generate(models, "gray background", num_inference_steps=4, seed=1, return_latents=True, progress=False)[1]
    b = generate(models, "gray background", num_inference_steps=4, seed=1, return_latents=True, progress=False)[1]
    c = generate(models, "gray background", num_inference_steps=4, seed=2, return_latents=True, progress=False)[1]
    assert torch.equal(a, b) and not torch.equal(a, c)
    r = generate(models, "gray background", num_inference_steps=4, guidance="rescaled", guidance_scale=0.5,
                 return_latents=True, progress=False)[1]
    assert torch.isfinite(r).all()
    with pytest.raises(ValueError, match="unknown guidance"): generate(models, "x", guidance="nope")
    from course_utils.sampling import denoise                       # 2 rows (one prompt) for 3 latents: said, not a UNet error
    with pytest.raises(ValueError, match="emb has 2 rows for 3 latents"):
        denoise(models, torch.randn(3, 4, 16, 16), encode_cfg_prompts(models, ["gray background"]), progress=False)


@needs_model
def test_rescaled_rule_is_what_generate_applies_at_every_step(models):
    "generate(guidance='rescaled') = a DDIM loop written here with rescaled_guidance on [u ; c]; CFG at the same scale is another image."
    from course_utils.sampling import initial_latents
    prompt, g = "a red plain circle on the left, sky background", 0.5
    _, ours = generate(models, prompt, guidance="rescaled", guidance_scale=g, num_inference_steps=4, seed=2,
                       return_latents=True, progress=False)
    sched = models.scheduler
    sched.set_timesteps(4)
    x, emb = initial_latents(models, 1, torch.Generator().manual_seed(2)), encode_cfg_prompts(models, [prompt])
    with torch.no_grad():
        for t in sched.timesteps:
            u, c = models.unet(torch.cat([x, x]), t, encoder_hidden_states=emb).sample.chunk(2)
            x = sched.step(rescaled_guidance(u, c, g), t, x, eta=0.0).prev_sample
    close(ours, x)
    _, by_cfg = generate(models, prompt, guidance_scale=g, num_inference_steps=4, seed=2, return_latents=True, progress=False)
    assert rel_err(by_cfg, x) > 0.05


@needs_model
def test_generate_with_one_seed_per_prompt_reproduces_single_calls(models):
    prompts = ["gray background", "a red plain circle on the left, sky background", "sand background"]
    _, z = generate(models, prompts, num_inference_steps=4, seed=[5, 6, 7], return_latents=True, progress=False)
    for i, p in enumerate(prompts):
        _, z1 = generate(models, p, num_inference_steps=4, seed=5 + i, return_latents=True, progress=False)
        close(z[i:i + 1], z1)   # batched and single convolutions round differently (~1e-6; s = 7.5 amplifies it)
    _, other = generate(models, prompts[0], num_inference_steps=4, seed=6, return_latents=True, progress=False)
    assert rel_err(z[0:1], other) > 0.1      # another seed is far off
    with pytest.raises(ValueError, match="seed: got 2 for 3 prompts"): generate(models, prompts, seed=[1, 2])
    _, by_gens = generate(models, prompts, num_inference_steps=4, generator=[torch.Generator().manual_seed(s) for s in (5, 6, 7)],
                          return_latents=True, progress=False)
    assert torch.equal(by_gens, z)           # a list of generators, one per prompt, is a list of seeds
    for n in (2, 4):                          # not one per prompt: an error, not a truncated or shared stream
        with pytest.raises(ValueError, match=f"generator: got {n} for 3 prompts"):
            generate(models, prompts, generator=[torch.Generator() for _ in range(n)])
    with pytest.raises(TypeError, match="one int per prompt, got str"): generate(models, prompts, seed=[1, 2, "3"])


@needs_model
def test_generate_with_one_guidance_scale_per_prompt_reproduces_single_calls(models):
    prompt, scales = "a red plain circle on the left, sky background", [0, 1, 3, 7.5]
    for rule in ("cfg", "rescaled"):
        _, z = generate(models, [prompt] * 4, guidance=rule, guidance_scale=scales, num_inference_steps=4, seed=[5] * 4,
                        return_latents=True, progress=False)
        for i, s in enumerate(scales):
            _, z1 = generate(models, prompt, guidance=rule, guidance_scale=s, num_inference_steps=4, seed=5,
                             return_latents=True, progress=False)
            close(z[i:i + 1], z1)
        assert rel_err(z[0], z[3]) > 0.1          # the scales differ in the batch
        _, z_arr = generate(models, [prompt] * 4, guidance=rule, guidance_scale=np.array(scales), num_inference_steps=4,
                            seed=np.array([5] * 4), return_latents=True, progress=False)
        assert torch.equal(z_arr, z)              # 1-D arrays of scales and seeds are lists
    with pytest.raises(ValueError, match="guidance_scale: got 2 for 4"): generate(models, [prompt] * 4, guidance_scale=[1, 3])
