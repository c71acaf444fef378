"""Issue 14's experiment, which became stage 2c of the recipe: a cheaper UNet for the tiny model, cut from
the trained one (stage 2b), then fine-tuned or distilled. The course now ships the `no-attn` cut distilled
with pair weight 16 (`scripts/train_toy_sd.py`'s stage 2c runs the same call); this script keeps the
variants and the fine-tune that were measured against it. It needs stage 2b's UNet as the teacher,
which `train_toy_sd.py` writes to CKPT/stage-2b:

    python scripts/slim_unet.py --teacher runs/toy-sd/stage-2b --variant no-attn --ckpt runs/slim-no-attn   # re-run to resume
    python scripts/slim_unet.py --teacher runs/toy-sd/stage-2b --method distil --epochs 8 --pair-weight 16 --ckpt runs/distil
    python benchmarks/editors.py --model runs/slim-no-attn/model --offset 100000 --n 12 \\
        --methods DiffEdit "LEDITS++" "LEDITS++ few words"                      # tuning edits, not held-out ones

Below, "the shipped UNet" is stage 2b's, the one shipped when these were measured.

The shipped UNet's 16x16 level (the full latent resolution) holds three transformer blocks (down 0,
up 2 twice); with 256 tokens of self-attention each, they take a third to a half of a call on a CPU
(random weights, side by side: 22.9 -> 16.7 ms per row at 2 rows, 6.9 -> 3.3 at 64) while holding 2 %
of the weights. A variant keeps every other weight of the shipped UNet as it is:
- `no-attn`: plain resnet blocks at 16x16 (DownBlock2D / UpBlock2D); cross-attention stays at 8x8
  and 4x4 (= latent/4, where LEDITS++ reads its maps);
- `no-self`: the 16x16 blocks keep their cross-attention (attn2) and feed-forward; their self-attention
  becomes a second cross-attention (diffusers' `only_cross_attention`), its output projection zeroed,
  so that at the start the block is the shipped one minus its self-attention.
Then stage 2b's loss (`training.finetune_attention`: denoising loss + attention localisation at
latent/4, UNet and text encoder; here at lr 5e-4 (--lr), EMA decay 0.995, seed 2, where stage 2b had 2e-4,
0.999 and seed 1) repairs what the cut broke; the result is written as a diffusers
folder (`--ckpt`/model) with the shipped VAE and tokenizer.

Measured on 2026-12-01, 2-core CPU. `no-attn`, 4 epochs (1,000 steps at batch 32, 13 min; run by a
draft of this script with the same recipe): validation loss (stage 2b's) 0.106 after one epoch,
0.098 after four; UNet 27.5 -> 20.4 ms per row at 2 rows, 10.2 -> 6.6 at 16, 7.7 -> 4.6 at 64 (side
by side); prompt adherence on 48 held-out scenes at guidance 1 / 2 / 3 (all attributes right) 0.75 /
0.96 / 0.98, the shipped model 0.75 / 0.96 / 0.96. On 84 tuning edits (12 per kind, offset 100 000)
with the shipped settings: DiffEdit 0.95 -> 0.93, LEDITS++ with whole captions 0.89 -> 0.93, but
LEDITS++ with a few words 0.45 -> 0.13 (colour 0.50 -> 0.08, shape 0.50 -> 0.00); edit scales
x1.5-x3 did not bring it back, nor M2 alone. Resumed to 12 epochs (the one-cycle schedule re-drawn
over 12; 28 min more): validation 0.095, few words colour 0.08, shape 0.08, added accessories 0.33
(shipped: 0.50 each). `no-self`, 4 epochs (17 min; random weights of both shapes: 22.9 -> 18.0 ms
per row at 2 rows, 6.9 -> 5.2 at 64): validation 0.096, few words colour 0.00, shape 0.08,
accessories 0.33. `control`, the shipped UNet fine-tuned the same way with nothing cut (18 min):
validation 0.101 after one epoch, 0.095 after four, few words colour 0.17, shape 0.08, accessories
0.58. So the fine-tune, not (only) the cut, loses the few-word edits: the shipped few-word settings
are fragile to any change of the weights, and the validation loss does not see it. A next try should
keep them by construction (distil the shipped UNet's predictions, partial captions included, rather
than re-train on the data) or re-tune `TOY_LEDITS` on the new weights (`scripts/tune_toy_ledits.py`),
then measure every editor held out.

`--method distil` does the first (`training.distil_unet`): the cut UNet learns the shipped UNet's
noise predictions and latent/4 attention maps for whole, partial and empty captions, of the image's
scene or another's, with the shipped text encoder frozen; rows in pairs, two prompts for one x_t,
their difference matched with weight `--pair-weight` (guidance multiplies it). Measured on 2026-12-01
(`no-attn`, 2-core CPU, ~0.8 s a step): tuning edits as above, shipped model in brackets (0.95
DiffEdit, 0.89 LEDITS++ by captions, 0.45 few words). Without pairs, 4 epochs (13 min): 0.89, 0.90,
0.49 (colour 0.50, shape 0.58: kept); resumed to 8: 0.88, 0.88, 0.49. With pairs (weight 4, the
second prompt empty half the time), 8 epochs (27 min): 0.94, 0.88, 0.46; resumed to 12: 0.93, 0.88,
0.50; pairs weighted 16, 8 epochs: 0.93, 0.92, 0.49. So distillation keeps the few-word edits the
fine-tune lost. Seconds per edit in editors.py, the 4-epoch model vs the shipped one, run one after
the other: 0.40-0.43 vs 0.68-0.74 (1.7x). Held
out (offset 150 000, 48 per kind, DiffEdit only, to check issue 13's bar of 0.90 on every kind):
0.93 / 0.92 / 0.92 / 0.93 overall (shipped 0.93) but double edits (colour + accessory) 0.81 / 0.85 /
0.83 / 0.88 (shipped 0.90), so not shipped then. On 48 tuning edits per object kind (offset 100 000)
the weight-16 student and its teacher both landed double edits 0.90 with the mask's growth at 0.2;
re-tuned there for the student, growth 0.15 (colour 0.92 -> 0.98, texture 0.96, shape 0.90 -> 0.92,
double 0.90 -> 0.94, for 0.6-0.7 dB outside), and shipped. docs/measurements.md, "Why not 5x", has the rest.

`narrow` (widths 32/64/96, stage 2c's blocks), distilled from the shipped stage-2c UNet on the CPU,
12 epochs with pair weight 16 (33 min): validation 0.032; on the 84 tuning edits DiffEdit 0.95,
LEDITS++ by captions 0.89, few words 0.42 (the shipped model, side by side: 0.94, 0.92, 0.49), 1.1x
faster per edit in batches of 12 and slower at 2 rows (17.8-18.8 vs 13.7-15.7 ms per row). Not shipped.
"""
import argparse, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from course_utils import load_models
from course_utils.toyworld import model as toymodel, training

VARIANTS = {
    "no-attn": toymodel.SHIPPED_UNET,  # no transformer blocks at 16x16: what stage 2c ships
    "no-self": dict(toymodel.UNET, only_cross_attention=[True, False, False]),
    "control": toymodel.UNET,   # nothing cut: what the fine-tune alone does to the teacher
    "narrow": dict(toymodel.SHIPPED_UNET, block_out_channels=(32, 64, 96)),  # stage 2c's blocks, the 4x4 level narrower:
}                                                                            # only the 32-wide weights carry over


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", required=True, help="a diffusers folder of stage 2b's model (train_toy_sd.py writes CKPT/stage-2b)")
    ap.add_argument("--variant", choices=list(VARIANTS), default="no-attn")
    ap.add_argument("--ckpt", help="checkpoint folder (resume from here; default runs/slim-VARIANT-METHOD, one per experiment); "
                                   "the model goes to CKPT/model")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--iters", type=int, default=250, help="steps per epoch (a checkpoint per epoch)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--method", choices=("finetune", "distil"), default="finetune",
                    help="finetune: stage 2b's loss on the data, UNet and text encoder; distil: the teacher's "
                         "answers (training.distil_unet), its text encoder kept as it is")
    ap.add_argument("--pair-weight", type=float, default=4.0, help="distil: the weight of the paired rows' difference (0: none)")
    a = ap.parse_args(argv)
    if a.method == "finetune" and a.pair_weight != ap.get_default("pair_weight"):
        ap.error("--pair-weight is distillation's (--method distil)")
    a.ckpt = a.ckpt or f"runs/slim-{a.variant}-{a.method}"
    m = load_models(a.teacher, "cpu")
    unet, missing = toymodel.cut_unet(m.unet, VARIANTS[a.variant])
    n = lambda u: sum(p.numel() for p in u.parameters())
    print(f"{a.variant}: {n(m.unet):,} -> {n(unet):,} parameters; new: {missing or 'none'}")
    if a.method == "distil":
        unet, te = training.distil_unet(a.ckpt, m.vae, m.unet, unet, m.text_encoder, m.tokenizer, epochs=a.epochs,
                                        iters=a.iters, lr=a.lr, pair_weight=a.pair_weight), m.text_encoder
    else:
        unet, te = training.finetune_attention(a.ckpt, m.vae, unet, m.text_encoder, m.tokenizer, epochs=a.epochs,
                                               iters=a.iters, lr=a.lr, seed=2, ema_decay=0.995, tag="slim")
    out = toymodel.save_pipeline(Path(a.ckpt) / "model", vae=m.vae, unet=unet, text_encoder=te, tokenizer=m.tokenizer)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
