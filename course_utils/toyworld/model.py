"""The course's tiny Stable Diffusion: its architecture, and how it is written as a diffusers folder.

Same parts as SD 1.x, scaled down for 64x64 ToyWorld images:
- VAE (AutoencoderKL): 64x64x3 <-> 16x16x4 latents (2 down-samplings: factor 4).
- UNet2DConditionModel on 16x16x4 latents, cross-attention at 8 and 4 (= latent/4, where LEDITS++
  reads its attention maps). Trained as `UNET` (cross-attention at 16 too; fine-tuned so that a
  word's map at latent/4 falls on what it names), then distilled into `SHIPPED_UNET`: the same
  UNet without the transformer blocks at 16x16 (256 tokens of self-attention each; a third to a
  half of a call on a CPU, 2 % of the weights), which answers as the trained one does.
- CLIPTextModel (3 layers, width 128) with a CLIP BPE tokenizer over ToyWorld's words.
- The SD noise schedule (scaled-linear betas 0.00085..0.012 over 1000 steps), DDIM sampling.
"""
from __future__ import annotations
from pathlib import Path

__all__ = ["TOY_PATH", "WORDS", "VAE", "UNET", "SHIPPED_UNET", "SCHEDULER", "new_vae", "new_unet", "cut_unet",
           "new_text_encoder", "write_tokenizer", "save_pipeline"]

TOY_PATH = Path(__file__).parent.parent / "weights" / "toy-sd"

VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
           up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(16, 32, 64), layers_per_block=1,
           latent_channels=4, norm_num_groups=8, sample_size=64)
UNET = dict(sample_size=16, in_channels=4, out_channels=4, down_block_types=("CrossAttnDownBlock2D",) * 3,
            up_block_types=("CrossAttnUpBlock2D",) * 3, block_out_channels=(32, 64, 128), layers_per_block=1,
            cross_attention_dim=128, attention_head_dim=4, norm_num_groups=16)
SHIPPED_UNET = dict(UNET, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"))  # no attention at 16x16
TEXT = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=3, num_attention_heads=4,
            max_position_embeddings=32, projection_dim=128)
SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                 clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon")


def _words() -> list[str]:
    from .scene import COLORS, SHAPES, TEXTURES, BACKGROUNDS
    return sorted(set(list(COLORS) + list(SHAPES) + list(TEXTURES) + list(BACKGROUNDS) +
                      "a thing with hat sunglasses on the left right background , none".split()))


WORDS = _words()


def new_vae(scaling_factor: float = 1.0):
    from diffusers import AutoencoderKL
    return AutoencoderKL(**VAE, scaling_factor=scaling_factor)


def new_unet(config: dict = UNET):
    from diffusers import UNet2DConditionModel
    return UNet2DConditionModel(**config)


def cut_unet(unet, config: dict = SHIPPED_UNET):
    """A UNet of `config` holding every weight of `unet` that has the same name and shape, and the names
    of those it had to make anew. A self-attention made anew (turned into cross-attention) starts at zero output."""
    import torch
    new = new_unet(config)
    own = new.state_dict()
    missing, _ = new.load_state_dict({k: v for k, v in unet.state_dict().items() if k in own and own[k].shape == v.shape},
                                     strict=False)
    with torch.no_grad():
        for name in missing:
            if name.endswith(".attn1.to_k.weight"):
                out = new.get_submodule(name.removesuffix(".to_k.weight") + ".to_out.0")
                out.weight.zero_(); out.bias.zero_()
    return new, missing


def new_text_encoder(vocab_size: int, bos: int | None = None, eos: int | None = None, config: dict = TEXT):
    from transformers import CLIPTextConfig, CLIPTextModel
    bos = vocab_size - 2 if bos is None else bos
    eos = vocab_size - 1 if eos is None else eos
    return CLIPTextModel(CLIPTextConfig(vocab_size=vocab_size, bos_token_id=bos, eos_token_id=eos,
                                        pad_token_id=eos, **config))


def write_tokenizer(path):
    "Write the toy CLIP tokenizer (ToyWorld's words as single tokens) and load it."
    from transformers import CLIPTokenizer
    from .tokenizer import write_clip_tokenizer
    write_clip_tokenizer(WORDS, path, model_max_length=TEXT["max_position_embeddings"])
    return CLIPTokenizer.from_pretrained(str(path))


def save_pipeline(path, *, vae, unet, text_encoder, tokenizer):
    "Save the parts as a standard StableDiffusionPipeline folder (safetensors, DDIM scheduler)."
    from diffusers import StableDiffusionPipeline, DDIMScheduler
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=DDIMScheduler(**SCHEDULER), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(path), safe_serialization=True)
    return Path(path)
