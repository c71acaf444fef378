"""The shipped tiny Stable Diffusion: a standard diffusers folder that diffusers' own pipelines run.

The folder under test is `course_utils.toymodel.TOY_PATH`, or `$TOY_SD_PATH` when set (e.g. to
check a model that is still training)."""
import os
os.environ["HF_HUB_OFFLINE"] = "1"
from pathlib import Path
import numpy as np
import pytest
import torch
from course_utils.toyworld import model as toymodel
from course_utils.toyworld import random_scene, render, EDITS

PATH = Path(os.environ.get("TOY_SD_PATH", toymodel.TOY_PATH))
pytestmark = pytest.mark.skipif(not (PATH / "model_index.json").exists(), reason=f"no model at {PATH}")


@pytest.fixture(scope="module")
def pipe():
    from diffusers import StableDiffusionPipeline
    return StableDiffusionPipeline.from_pretrained(str(PATH), safety_checker=None, requires_safety_checker=False)


def test_folder_is_small_safetensors_only():
    files = [p for p in PATH.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
    assert {p.parent.name for p in files if p.suffix == ".safetensors"} == {"unet", "vae", "text_encoder"}
    assert sum(p.stat().st_size for p in files) < 40e6


def test_architecture(pipe):
    assert pipe.vae.config.scaling_factor != 1.0 and pipe.vae.config.sample_size == 64
    assert pipe.unet.config.sample_size == 16 and pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    assert 2 ** (len(pipe.vae.config.block_out_channels) - 1) == 4  # 64x64 image <-> 16x16 latents
    caption = random_scene(0).caption
    assert len(pipe.tokenizer(caption).input_ids) <= pipe.tokenizer.model_max_length


@pytest.mark.skipif("TOY_SD_PATH" in os.environ, reason="a model still training may be at an earlier stage")
def test_shipped_unet_is_the_distilled_architecture(pipe):
    "Stage 2c's UNet: no transformer blocks at 16x16, cross-attention at 8x8 and at latent/4 (LEDITS++'s maps)."
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in pipe.unet.config.items() if k in toymodel.SHIPPED_UNET}
    assert config == toymodel.SHIPPED_UNET and config != toymodel.UNET
    from course_utils.attention import capture_cross_attention
    stores = {}
    for hw in (4, 4), (16, 16):
        with capture_cross_attention(pipe.unet, hw) as stores[hw], torch.no_grad():
            pipe.unet(torch.zeros(1, 4, 16, 16), 500, torch.zeros(1, 5, pipe.unet.config.cross_attention_dim))
    assert stores[4, 4].mean().shape == (1, 4, 4, 5) and stores[16, 16].maps == []


def test_latents_are_unit_scale(pipe):
    x = torch.stack([torch.from_numpy(render(random_scene(10_000_000 + i)).array).permute(2, 0, 1) for i in range(32)])
    with torch.no_grad():
        z = pipe.vae.encode(x.float() / 127.5 - 1).latent_dist.mean * pipe.vae.config.scaling_factor
    assert z.shape == (32, 4, 16, 16) and 0.7 < z.std().item() < 1.4


def test_stable_diffusion_pipeline_generates(pipe):
    out = pipe(random_scene(3).caption, num_inference_steps=5, guidance_scale=5.0,
               generator=torch.Generator().manual_seed(0), output_type="np")
    img = out.images[0]
    assert img.shape == (64, 64, 3) and np.isfinite(img).all() and img.std() > 0.02


def test_diffedit_pipeline_runs(pipe):
    from diffusers import StableDiffusionDiffEditPipeline, DDIMInverseScheduler
    dp = StableDiffusionDiffEditPipeline(**{k: v for k, v in pipe.components.items() if k != "image_encoder"},
                                         inverse_scheduler=DDIMInverseScheduler.from_config(pipe.scheduler.config),
                                         requires_safety_checker=False)
    edit = EDITS["color"](random_scene(4), np.random.default_rng(0))
    image = render(edit.source).image
    g = torch.Generator().manual_seed(0)
    mask = dp.generate_mask(image=image, source_prompt=edit.source_prompt, target_prompt=edit.target_prompt,
                            num_maps_per_mask=4, num_inference_steps=10, generator=g)
    assert mask.shape == (1, 16, 16) and set(np.unique(mask)) <= {0.0, 1.0}
    latents = dp.invert(image=image, prompt=edit.source_prompt, num_inference_steps=10, inpaint_strength=0.8,
                        generator=g).latents
    out = dp(prompt=edit.target_prompt, mask_image=mask, image_latents=latents, num_inference_steps=10,
             inpaint_strength=0.8, generator=g, output_type="np").images
    assert out.shape == (1, 64, 64, 3) and np.isfinite(out).all()


def test_ledits_pp_pipeline_runs_with_cross_attention_masks(pipe):
    from diffusers import LEditsPPPipelineStableDiffusion, DPMSolverMultistepScheduler
    # The scheduler of diffusers' LEDITS++ docs. (With DDIMScheduler, diffusers 0.42's `invert` fails:
    # it calls add_noise with a float timestep tensor, which cannot index alphas_cumprod.)
    sched = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, algorithm_type="sde-dpmsolver++", solver_order=2)
    parts = {k: v for k, v in pipe.components.items() if k not in ("image_encoder", "scheduler")}
    lp = LEditsPPPipelineStableDiffusion(**parts, scheduler=sched, requires_safety_checker=False)
    edit = EDITS["add_accessory"](random_scene(6), np.random.default_rng(0))
    lp.invert(image=render(edit.source).image, num_inversion_steps=10, skip=0.15,
              generator=torch.Generator().manual_seed(0))
    texts, reverse = zip(*edit.concepts)
    out = lp(editing_prompt=list(texts), reverse_editing_direction=list(reverse), edit_guidance_scale=[5.0] * len(texts),
             use_cross_attn_mask=True, use_intersect_mask=True, output_type="np",
             generator=torch.Generator().manual_seed(0)).images
    assert out.shape == (1, 64, 64, 3) and np.isfinite(out).all()
