"""Prompts -> text embeddings, the way Stable Diffusion conditions its UNet.

The tokenizer pads every prompt to `tokenizer.model_max_length` tokens (77 for SD, 32 for the toy
model); the text encoder's last hidden state (B x L x D) is what cross-attention reads.
"""
from __future__ import annotations
import warnings
import torch

__all__ = ["as_prompt_list", "tokenize", "encode_prompt", "encode_cfg_prompts"]


def as_prompt_list(prompts, what="prompts") -> list[str]:
    "A str or a list of str -> a non-empty list of str (clear errors otherwise)."
    if isinstance(prompts, str): prompts = [prompts]
    try: prompts = list(prompts)
    except TypeError: raise TypeError(f"{what} must be a str or a list of str, got {type(prompts).__name__}") from None
    if not prompts: raise ValueError(f"{what} is empty: give at least one prompt (use '' for the empty prompt)")
    bad = [p for p in prompts if not isinstance(p, str)]
    if bad: raise TypeError(f"{what} must be strings, got {type(bad[0]).__name__}")
    return prompts


def tokenize(models, prompts) -> torch.Tensor:
    "B x L token ids, padded/truncated to the tokenizer's `model_max_length`."
    tok, prompts = models.tokenizer, as_prompt_list(prompts)
    for p, ids in zip(prompts, tok(prompts).input_ids):
        if len(ids) > tok.model_max_length:                  # as diffusers' pipelines do, say what the encoder never reads
            cut = tok.decode(ids[tok.model_max_length - 1:-1])
            warnings.warn(f"prompt {p!r} is {len(ids)} tokens, over the {tok.model_max_length} the text encoder reads: "
                          f"{cut!r} is cut off", stacklevel=3)
    return tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids


@torch.no_grad()
def encode_prompt(models, prompts) -> torch.Tensor:
    "B x L x D text embeddings (the text encoder's last hidden state)."
    ids = tokenize(models, prompts).to(models.text_encoder.device)
    return models.text_encoder(ids)[0].to(models.unet.dtype)


def encode_cfg_prompts(models, prompts, negative_prompt=None) -> torch.Tensor:
    """2B x L x D: [unconditional (or negative) ; conditional] embeddings, for one batched UNet call.

    `negative_prompt`: None (the empty prompt), one str for all, or one per prompt."""
    prompts = as_prompt_list(prompts)
    neg = [""] * len(prompts) if negative_prompt is None else as_prompt_list(negative_prompt, "negative_prompt")
    if len(neg) == 1: neg = neg * len(prompts)
    if len(neg) != len(prompts):
        raise ValueError(f"got {len(neg)} negative prompts for {len(prompts)} prompts: give one, or one per prompt")
    return encode_prompt(models, neg + prompts)
