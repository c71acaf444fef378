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
    """B x L token ids, padded/truncated to the tokenizer's `model_max_length`. A prompt longer than that is
    cut, as diffusers' pipelines cut it, with a warning that says what the text encoder never reads."""
    tok, prompts = models.tokenizer, as_prompt_list(prompts)
    L = tok.model_max_length
    out = tok(prompts, padding="max_length", max_length=L, truncation=True, return_tensors="pt")
    for p, mask in zip(prompts, out.attention_mask):
        if int(mask.sum()) < L: continue                     # padding left over: the whole prompt is in
        ids = tok(p, verbose=False).input_ids                # at the limit, or cut: how long is it?
        if len(ids) > L:
            warnings.warn(f"prompt {p!r} is {len(ids)} tokens, over the {L} the text encoder reads: "
                          f"{tok.decode(ids[L - 1:-1])!r} is cut off", stacklevel=_outside_stack_level())
    return out.input_ids


def _outside_stack_level() -> int:
    "The stack level of the first caller outside course_utils and torch (warnings point at the learner's line)."
    import os, sys
    f, level = sys._getframe(2), 2                           # 1: the function that warns
    here = (os.sep + "course_utils" + os.sep, os.sep + "torch" + os.sep)
    while f is not None and any(h in f.f_code.co_filename for h in here):
        f, level = f.f_back, level + 1
    return level


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
