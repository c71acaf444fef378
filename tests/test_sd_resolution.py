"""Every helper at SD 1.5's resolution (512x512 images, 64x64 latents, 16x16 maps at latent/4, 77 tokens),
on a tiny random model with SD 1.5's structure loaded from a fake hub cache; in float32, and in float16.

float16 runs on the CPU here (slowly: torch's CPU half kernels), with the same checks and looser bounds,
and on a GPU too where there is one ("cuda-float16", skipped elsewhere).
What stays float32 inside the helpers, and why: the guidance norms (a sum of 16k squares overflows
half), the LEDITS++ quantile masks (torch.quantile has no half kernel) and the attention-map averages;
everything else (UNet, VAE, text encoder, the scheduler steps and the z_t solve) runs in the model's dtype."""
import pytest
import torch
from sd_shaped import SD15_ID
from course_utils import load_models, generate
from course_utils.photos import load_photo
from course_utils.diffedit import diffedit_mask, diffedit_mask_single_prompt, diffedit, img2img
from course_utils.inversion import ddim_invert
from course_utils.ledits import ddpm_invert, ledits_edit, make_concepts
from course_utils.latents import pil_to_tensor
from pathlib import Path

PHOTO = Path(__file__).resolve().parents[1] / "images" / "chelsea.jpg"
# "no edit" reproduces the inverted latents to float32 rounding in both dtypes (the solve is float32);
# relative RMSE, since these random weights give latents of RMS ~0.05 (a trained SD VAE: ~1)
EXACT = 5e-5


ON_A_GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


@pytest.fixture(scope="module", params=[("cpu", torch.float32), ("cpu", torch.float16),
                                        pytest.param(("cuda", torch.float16), marks=ON_A_GPU)],
                ids=["float32", "float16", "cuda-float16"])
def sd(request, sd_cache):
    device, dtype = request.param
    return load_models(SD15_ID, device, dtype, cache_dir=sd_cache)


@pytest.fixture(scope="module")
def photo(sd_cache):
    return load_photo(PHOTO, 512, verbose=False)


def finite_image(im, size=512):
    x = pil_to_tensor(im)
    return im.size == (size, size) and bool(torch.isfinite(x).all())


def test_the_model_has_sd15s_shapes(sd):
    assert sd.vae.config.sample_size == 512 and sd.unet.config.sample_size == 64
    assert len(sd.unet.down_blocks) == 4 and sd.tokenizer.model_max_length == 77
    assert {sd.unet.dtype, sd.vae.dtype, sd.text_encoder.dtype} == {sd.dtype}


@torch.no_grad()
def test_generate(sd):
    ims, z = generate(sd, ["a photo of a cat", "a photo of a dog"], num_inference_steps=2, seed=[0, 1],
                      return_latents=True, progress=False)
    assert z.shape == (2, 4, 64, 64) and z.dtype == sd.dtype and torch.isfinite(z).all()
    assert all(finite_image(im) for im in ims)


@torch.no_grad()
def test_both_diffedit_masks(sd, photo):
    for mk in (diffedit_mask(sd, photo, "a photo of a cat", "a photo of a dog", n=2),
               diffedit_mask_single_prompt(sd, photo, "a photo of a dog", n=2)):
        assert mk.soft.shape == (64, 64) and torch.isfinite(mk.soft).all() and 0 <= mk.soft.min() <= mk.soft.max() <= 1
        soft, hard = mk.upsampled(512)
        assert soft.shape == hard.shape == (512, 512) and hard.dtype == torch.bool


@torch.no_grad()
def test_ddim_inversion_and_masked_decoding(sd, photo):
    mask = torch.zeros(64, 64, dtype=torch.bool); mask[16:48, 16:48] = True
    inv = ddim_invert(sd, photo, num_inference_steps=4, ratio=0.5, progress=False)
    assert inv.latents.shape == (3, 1, 4, 64, 64) and torch.isfinite(inv.latents).all()
    out, z = diffedit(sd, photo, "a photo of a dog", mask, ratio=0.5, num_inference_steps=4, inversion=inv,
                      return_latents=True, progress=False)
    assert finite_image(out) and z.shape == (1, 4, 64, 64)
    outside = ~mask
    assert torch.equal(z[..., outside], inv.latents[0][..., outside])  # the outside is the input's latents


@torch.no_grad()
def test_img2img(sd, photo):
    assert finite_image(img2img(sd, photo, "a photo of a dog", strength=0.5, num_inference_steps=4, progress=False))


@pytest.mark.parametrize("solver", ["ddpm", "dpmpp"])
@torch.no_grad()
def test_edit_friendly_inversion_is_exact_at_64x64_latents(sd, photo, solver):
    inv = ddpm_invert(sd, photo, num_inversion_steps=4, skip=0.25, solver=solver, progress=False)
    assert inv.xts.shape == (5, 1, 4, 64, 64) and torch.isfinite(inv.zs).all()
    _, z = ledits_edit(sd, inv, [], return_latents=True, progress=False)
    err = (z.float() - inv.x0.float()).pow(2).mean().sqrt() / inv.x0.float().pow(2).mean().sqrt()
    assert err <= EXACT


@torch.no_grad()
def test_ledits_masks_at_16x16_and_processors_restored(sd, photo):
    before = {k: type(v) for k, v in sd.unet.attn_processors.items()}
    inv = ddpm_invert(sd, photo, num_inversion_steps=3, skip=0.0, solver="dpmpp", progress=False)
    concepts = make_concepts(["sunglasses", "a hat"], scale=[4, 3], threshold=0.9)
    variants = (dict(), dict(use_intersect_mask=False), dict(use_cross_attn_mask=False, use_intersect_mask=False))
    if sd.dtype == torch.float16 and sd.device.type == "cpu": variants = variants[:1]  # M1 ∩ M2 runs every mask's half path; CPU half: 8 s each
    for kw in variants:
        out, masks = ledits_edit(sd, inv, concepts, record_masks=True, progress=False, intersect_below=1000, **kw)
        assert finite_image(out)
        assert masks["mask"].shape == (3, 2, 64, 64) and masks["M2"].shape == (3, 2, 64, 64)
        if kw.get("use_cross_attn_mask", True):
            m1 = masks["M1"]  # read at 16x16 (latent/4), upsampled to the latents
            assert m1.shape == (3, 2, 64, 64) and (m1.unflatten(2, (16, 4)).unflatten(4, (16, 4)).amin((3, 5)) ==
                                                    m1.unflatten(2, (16, 4)).unflatten(4, (16, 4)).amax((3, 5))).all()
            both = masks["mask"].bool() == (masks["M1"].bool() & masks["M2"].bool())
            assert both.all() if kw == {} else torch.equal(masks["mask"], masks["M1"])
        else:
            assert "M1" not in masks or masks["M1"] is None or not masks["M1"].any()
            assert torch.equal(masks["mask"], masks["M2"])
    assert {k: type(v) for k, v in sd.unet.attn_processors.items()} == before
