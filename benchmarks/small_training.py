"""Lesson 7's training recipe over several seeds: how much a run learns, with and without min-SNR weighting.

    python benchmarks/small_training.py [--steps 300 400] [--min-snr 5 0] [--seeds 0 1 2] [--lr 6e-3]
                                        [--unet JSON] [--text JSON] [--tokens 12] [--offset 0.2] [--bs 32]

Each run is lesson 7's (`toyworld.small`): 1,000 training scenes, batches of `--bs` (32) over 5 one-cycle epochs
at peak rate `--lr`, AdamW (wd 0.01), an EMA (decay 0.99) sampled for the result; seed s seeds both the
model's initial weights and the training noise (the lesson is seed 0, without lr_find's plot). The
result: the judge reads 60 held-out captions' images (guidance 3, 20 DDIM steps): each attribute's
share and how many of the 60 have all three right. --min-snr 0 trains on the plain MSE; --unet and --text
change keys of SMALL_UNET and SMALL_TEXT, --tokens the length captions are padded to, --offset the
offset noise's std. The lesson's recipe until 2026-12-06 was
`--text '{"num_hidden_layers": 1}' --tokens 32 --offset 0.1 --steps 400`.
One run takes about a minute on 2 cores; the default grid (2 step counts x 2 losses x 3 seeds) 15 minutes.
Run it alone: two torch processes on two cores slow each other several times over.
"""
import argparse, copy, json, os, sys, tempfile
from functools import partial
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from torch import nn
from fastai.learner import Learner
from fastai.optimizer import OptimWrapper
import fastai.callback.schedule  # noqa: F401  (Learner.fit_one_cycle)
from course_utils import load_models
from course_utils.metrics import wilson_interval
from course_utils.toyworld import load_judge
from course_utils.toyworld.callbacks import EMA
from course_utils.toyworld.small import (SMALL_ATTRIBUTES, SMALL_TOKENS, small_scenes, small_caption, encode_scenes,
                                         caption_ids, small_tokenizer, new_small_model, NoisyLatents, weighted_mse,
                                         index_dataloaders, small_models, small_adherence)
from common import timed

EPOCHS = 5


def run(toy, judge, tok, data, test_scenes, *, steps: int, min_snr: float, seed: int, lr: float, offset: float,
        bs: int = 32, unet: dict | None = None, text: dict | None = None):
    "One training run as lesson 7's, captions tokenized by `tok` -> (adherence dict, training seconds)."
    train, valid = data
    tokens = tok.model_max_length
    model = new_small_model(tok, seed=seed, unet=unet, text={"max_position_embeddings": tokens, **(text or {})})
    learn = Learner(index_dataloaders(steps // EPOCHS, bs, len(valid[0])), model,
                    loss_func=weighted_mse if min_snr else nn.MSELoss(), wd=0.01, path=tempfile.mkdtemp(),
                    opt_func=partial(OptimWrapper, opt=torch.optim.AdamW),
                    cbs=[NoisyLatents(train, valid, caption_ids(tok, [""]), min_snr=min_snr or None, offset=offset, seed=seed)])
    ema = copy.deepcopy(model).requires_grad_(False)
    learn.add_cbs([EMA(ema, decay=0.99)])
    with learn.no_bar(), learn.no_logging():
        _, seconds = timed(lambda: learn.fit_one_cycle(EPOCHS, lr))
    return small_adherence(small_models(toy, ema), judge, test_scenes), seconds


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, nargs="+", default=[300, 400], help="training steps (a multiple of 5: 5 epochs)")
    ap.add_argument("--min-snr", type=float, nargs="+", default=[5.0, 0.0], help="γ of min-SNR weighting; 0: plain MSE")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--lr", type=float, default=6e-3)
    ap.add_argument("--unet", type=json.loads, default=None,
                    help='SMALL_UNET keys to change, as JSON: e.g. \'{"mid_block_type": null}\' or \'{"block_out_channels": [16, 64]}\'')
    ap.add_argument("--text", type=json.loads, default=None,
                    help='SMALL_TEXT keys to change, as JSON: e.g. \'{"num_hidden_layers": 1}\' (CLIP\'s causal transformer layers)')
    ap.add_argument("--tokens", type=int, default=SMALL_TOKENS, help="captions padded to this many tokens (the shipped tokenizer: 32)")
    ap.add_argument("--offset", type=float, default=0.2, help="offset noise: std of the constant per image and channel added to ε")
    ap.add_argument("--bs", type=int, default=32, help="training batch size (the lesson's: 32)")
    a = ap.parse_args(argv)
    toy, judge = load_models("toy"), load_judge()
    train_scenes, valid_scenes, test_scenes = small_scenes(1000, seed=0), small_scenes(64, seed=1), small_scenes(60, seed=2)
    tok = small_tokenizer(toy.tokenizer, a.tokens)
    data = [(encode_scenes(toy.vae, s), caption_ids(tok, map(small_caption, s))) for s in (train_scenes, valid_scenes)]
    print(f"lesson 7's recipe{f', UNet {a.unet}' if a.unet else ''}{f', text encoder {a.text}' if a.text else ''}, captions of "
          f"{a.tokens} tokens, offset noise {a.offset:g}, peak lr {a.lr:g}, batches of {a.bs}, {torch.get_num_threads()} threads; "
          "60 held-out captions per run")
    print(f"{'steps':>5} | {'loss':>12} | seed | " + " | ".join(f"{x:>10}" for x in SMALL_ATTRIBUTES) + " | all three | train s")
    for steps in a.steps:
        for g in a.min_snr:
            ks = []
            for seed in a.seeds:
                res, seconds = run(toy, judge, tok, data, test_scenes, steps=steps, min_snr=g, seed=seed, lr=a.lr,
                                   offset=a.offset, bs=a.bs, unet=a.unet, text=a.text)
                ks.append(res["k"])
                print(f"{steps:5d} | {f'min-SNR γ={g:g}' if g else 'plain MSE':>12} | {seed:4d} | "
                      + " | ".join(f"{res[x]:10.2f}" for x in SMALL_ATTRIBUTES) + f" | {res['k']:5d}/60 | {seconds:7.0f}", flush=True)
            lo, hi = wilson_interval(sum(ks), 60 * len(ks))
            print(f"{steps:5d} | {f'min-SNR γ={g:g}' if g else 'plain MSE':>12} |  all | all three right in {sum(ks)}/{60 * len(ks)} "
                  f"= {sum(ks) / (60 * len(ks)):.2f} [{lo:.2f}, {hi:.2f}]; per seed {', '.join(map(str, ks))}", flush=True)


if __name__ == "__main__":
    main()
