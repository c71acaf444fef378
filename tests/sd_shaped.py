"""A tiny random-weight model with SD 1.5's *structure* at SD's resolution, built here (nothing shipped).

Same as SD 1.5 where the helpers can tell: 512x512 RGB images, a VAE that down-samples 8x to
64x64x4 latents (scaling factor 0.18215), a 4-level UNet (3 cross-attention levels + 1 plain, cross-
attention at 64, 32 and 16 = latent/4, where LEDITS++ reads its maps), a CLIP text encoder over 77
tokens, SD's DDIM schedule. Only the widths (and one attention head: at 64x64 latents the self-
attention's 4096 x 4096 maps are most of the cost) are tiny, so every helper runs in seconds on a CPU.

With `real=True`, the same folder holds SD 1.5's *real* architecture instead (`random_sd15`: 860M-
parameter UNet, random float16 weights built on the GPU when there is one, the fp16 variant only), for
the GPU run of the lessons' real-photo cells (test_real_photo_cells.py), where speed and float16 range
are what is checked and the tiny widths would hide both.

`write_hub_cache` lays it out in a Hugging Face cache as `snapshot_download` leaves it, under SD 1.5's
own hub id, with what that repository also holds and the course must never load: an fp16 variant next
to the float32 weights, a safety checker, a feature extractor, pickles (garbage bytes: loading one
would fail), a single-file checkpoint at the top.
"""
from __future__ import annotations
import json
from pathlib import Path
import torch

SD15_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
UNET = dict(sample_size=64, in_channels=4, out_channels=4,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            block_out_channels=(16, 16, 32, 32), layers_per_block=1, cross_attention_dim=32,
            attention_head_dim=1, norm_num_groups=8, flip_sin_to_cos=True, freq_shift=0)
VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
           up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(4, 8, 8, 8), layers_per_block=1,
           latent_channels=4, norm_num_groups=4, sample_size=512, scaling_factor=0.18215)
TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=77, projection_dim=32, hidden_act="quick_gelu")
MODEL_INDEX = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.6.0",
               "feature_extractor": ["transformers", "CLIPImageProcessor"], "requires_safety_checker": True,
               "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
               "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
               "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
               "vae": ["diffusers", "AutoencoderKL"]}
# words the real-photo cells use, as single tokens (any other word still tokenizes, letter by letter)
WORDS = "a photo of cat dog an astronaut sunglasses smiling hat".split()
PARTS = ("text_encoder", "vae", "unet")
WEIGHT_NAME = {"text_encoder": "model", "vae": "diffusion_pytorch_model", "unet": "diffusion_pytorch_model"}


def build(seed: int = 0, dtype: torch.dtype = torch.float32) -> dict:
    "The three modules with random weights (seeded), in `dtype`."
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(seed)
    v = _vocab_size()
    text = CLIPTextModel(CLIPTextConfig(vocab_size=v, bos_token_id=v - 2, eos_token_id=v - 1, pad_token_id=v - 1, **TEXT))
    parts = dict(text_encoder=text, vae=AutoencoderKL(**VAE), unet=UNet2DConditionModel(**UNET))
    return {k: m.to(dtype).eval() for k, m in parts.items()}


def _vocab_size() -> int:
    from course_utils.toyworld.tokenizer import learn_merges
    return 512 + len(learn_merges(WORDS)) + 2  # 256 bytes, 256 word-final bytes, merges, BOS, EOS


def real_widths(seed: int = 0, dtype: torch.dtype = torch.float16) -> dict:
    "SD 1.5's real UNet, VAE and text encoder with random weights (seeded), built where they will run."
    from course_utils.models import random_sd15
    torch.manual_seed(seed)
    unet, vae, text_encoder = random_sd15(dtype, "cuda" if torch.cuda.is_available() else "cpu")
    return dict(text_encoder=text_encoder, vae=vae, unet=unet)


def write_folder(path: Path, *, fp16_variant: bool = True, extras: bool = True, real: bool = False) -> Path:
    """A diffusers folder: float32 weights (seed 0) and, with `fp16_variant`, an fp16 variant holding
    *other* weights (seed 1, so a test can tell which was loaded); with `extras`, the repository's other
    files (safety checker, feature extractor, pickles, a top-level checkpoint). With `real`, SD 1.5's
    real widths (`real_widths`) as the fp16 variant alone: no 3.4 GB float32 copy to write."""
    from diffusers import DDIMScheduler
    from course_utils.models import SD15_CONFIGS
    from course_utils.toyworld.tokenizer import write_clip_tokenizer
    path = Path(path)
    weights = [("fp16", 0, torch.float16)] if real else [("fp16", 1, torch.float16)] * fp16_variant + [(None, 0, torch.float32)]
    # the variant first, renamed; then the float32 weights, whose config.json is the one that stays
    for variant, seed, dtype in weights:
        for part, m in (real_widths if real else build)(seed, dtype).items():
            m.save_pretrained(path / part, safe_serialization=True)
            if variant:
                name = WEIGHT_NAME[part]
                (path / part / f"{name}.safetensors").rename(path / part / f"{name}.{variant}.safetensors")
    write_clip_tokenizer(WORDS, path / "tokenizer", model_max_length=77)
    DDIMScheduler(**SD15_CONFIGS["scheduler"]).save_pretrained(path / "scheduler")
    (path / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2))
    if extras:
        garbage = b"not a loadable file: the course must never open it"
        for f in ["safety_checker/model.safetensors", "safety_checker/model.fp16.safetensors",
                  "safety_checker/pytorch_model.bin", "text_encoder/pytorch_model.bin",
                  "unet/diffusion_pytorch_model.bin", "unet/diffusion_pytorch_model.non_ema.safetensors",
                  "vae/diffusion_pytorch_model.fp16.bin", "v1-5-pruned-emaonly.safetensors", "v1-5-pruned.ckpt"]:
            (path / f).parent.mkdir(parents=True, exist_ok=True)
            (path / f).write_bytes(garbage)
        (path / "safety_checker" / "config.json").write_text("{}")
        (path / "feature_extractor").mkdir(exist_ok=True)
        (path / "feature_extractor" / "preprocessor_config.json").write_text("{}")
    return path


def write_hub_cache(cache: Path, repo_id: str = SD15_ID, **kw) -> Path:
    "A Hugging Face hub cache holding `repo_id` (one snapshot, refs/main) as `snapshot_download` leaves it."
    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    write_folder(repo / "snapshots" / COMMIT, **kw)
    return Path(cache)
