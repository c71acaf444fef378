"""Cross-attention maps, captured with a diffusers attention processor (and restored afterwards).

Cross-attention lets each latent pixel (a query) attend to the prompt's tokens (keys):

    A = softmax(Q K^T / sqrt(d))        shape (batch x heads) x pixels x tokens

`A[:, p, j]` is how much pixel p reads token j. LEDITS++ builds its mask M1 from these maps at
latent/4 resolution, averaged over heads and over the layers of the down and up blocks. We
capture them by installing, on those cross-attention layers (`attn2`), a processor that computes
attention the classic way and keeps `A` when its pixel count matches the resolution asked for —
with diffusers' `Attention.set_processor` on those layers alone, never by patching modules — and put
the original processors back on exit, even after an error (`unet.set_attn_processor` does the same
through every layer of the UNet: 6 ms a swap in and out on the tiny UNet, against 0.5 ms).
"""
from __future__ import annotations
from contextlib import contextmanager
import torch

__all__ = ["CrossAttentionStore", "StoreCrossAttnProcessor", "capture_cross_attention", "keep_processors", "PLACES"]


class CrossAttentionStore:
    """Collects cross-attention probabilities of one resolution; `mean()` -> B x h x w x tokens.
    `detach=False` keeps them in the autograd graph (to train on them, see `training.finetune_attention`)."""
    def __init__(self, hw: tuple[int, int], detach: bool = True):
        self.hw, self.maps, self.detach = tuple(hw), [], detach

    def clear(self): self.maps = []

    def add(self, probs: torch.Tensor, heads: int):
        "probs: (B*heads) x pixels x tokens; kept only at this store's resolution."
        if probs.shape[1] == self.hw[0] * self.hw[1]:
            b = probs.shape[0] // heads
            self.maps.append((probs.detach() if self.detach else probs).reshape(b, heads, *probs.shape[1:]).mean(1))  # mean over heads

    def mean(self) -> torch.Tensor:
        "Average over the captured layers: B x h x w x tokens."
        if not self.maps:
            raise RuntimeError(f"no cross-attention map at {self.hw[0]}x{self.hw[1]} was captured: the UNet has no "
                               f"cross-attention layer at that resolution (LEDITS++ needs one at latent/4)")
        a = torch.stack(self.maps).float().mean(0)
        return a.reshape(a.shape[0], *self.hw, a.shape[-1])


class StoreCrossAttnProcessor:
    "diffusers' classic AttnProcessor, which also hands the attention probabilities to a store."
    def __init__(self, store: CrossAttentionStore): self.store = store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        residual = hidden_states
        if attn.spatial_norm is not None: hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            b, ch, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, ch, h * w).transpose(1, 2)
        batch, seq, _ = hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        attention_mask = attn.prepare_attention_mask(attention_mask, seq, batch)
        if attn.group_norm is not None: hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        cross = encoder_hidden_states is not None
        if not cross: encoder_hidden_states = hidden_states
        elif attn.norm_cross: encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key, value = attn.to_k(encoder_hidden_states), attn.to_v(encoder_hidden_states)
        query, key, value = (attn.head_to_batch_dim(x) for x in (query, key, value))
        probs = attn.get_attention_scores(query, key, attention_mask)   # softmax(Q K^T / sqrt(d))
        if cross: self.store.add(probs, attn.heads)
        hidden_states = attn.batch_to_head_dim(torch.bmm(probs, value))
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4: hidden_states = hidden_states.transpose(-1, -2).reshape(b, ch, h, w)
        if attn.residual_connection: hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


PLACES = ("down", "mid", "up")


@contextmanager
def capture_cross_attention(unet, hw: tuple[int, int], places=("down", "up"), *, detach: bool = True):
    """Within the block, the cross-attention layers of the UNet's `places` store their maps of
    resolution `hw` in the yielded `CrossAttentionStore`; the UNet's own processors are restored
    on exit. LEDITS++ (and diffusers' pipeline) listen to the down and up blocks, not the mid block."""
    if not places or set(places) - set(PLACES):
        raise ValueError(f"places must be some of {PLACES}, got {places!r}")
    from diffusers.models.attention_processor import Attention
    store = CrossAttentionStore(hw, detach)
    listen = lambda name: name.endswith("attn2") and name.split("_")[0] in places  # "down_blocks.0...attn2" -> "down"
    layers = [mod for name, mod in unet.named_modules() if isinstance(mod, Attention) and listen(name)]
    original = [mod.processor for mod in layers]
    try:
        for mod in layers: mod.set_processor(StoreCrossAttnProcessor(store))
        yield store
    finally:
        for mod, proc in zip(layers, original): mod.set_processor(proc)


@contextmanager
def keep_processors(unet):
    """Within the block, anything may swap the UNet's attention processors; on exit the ones it had are put
    back. diffusers' LEDITS++ pipeline installs its own (the classic attention, and on the cross-attention
    layers one that keeps every map in the pipeline's store) on the UNet it shares with the course's
    helpers, and leaves them there: the next calls would run slower attention and keep growing that store."""
    original = unet.attn_processors                                  # {layer name: processor}
    try: yield unet
    finally: unet.set_attn_processor(original)
