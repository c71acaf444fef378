"""The fastai callbacks every training stage uses (training.py, and lesson 7 by hand).

    EMA(ema, decay)             after every step: ema ← d · ema + (1 − d) · model, d = min(decay, (1 + n) / (10 + n))
    Checkpoint(file, ema, tag)  after every epoch: model, EMA and optimizer state in one safetensors file,
                                so that a killed run resumes where it stopped (`training.load_checkpoint`)

The warm-up of the EMA's decay (n = steps so far) lets it follow the weights closely while they
move fast at first. Add both *after* `lr_find`: it trains a few steps and then puts the weights
back, and neither the EMA nor the checkpoint should see those steps.
"""
from __future__ import annotations
import time
from pathlib import Path
from fastai.callback.core import Callback
from .training import ema_update, save_checkpoint

__all__ = ["EMA", "Checkpoint"]


class EMA(Callback):
    "Keep `ema` (a copy of the learner's model) as an exponential moving average of its weights."
    order = 60

    def __init__(self, ema, decay: float = 0.999): self.ema, self.decay = ema, decay

    def after_step(self):
        n = self.epoch * self.n_iter + self.iter
        ema_update(self.ema, self.learn.model, min(self.decay, (1 + n) / (10 + n)))


class Checkpoint(Callback):
    "Write model, EMA and optimizer state to `file` (safetensors) after every epoch that trained."
    order = 70

    def __init__(self, file, ema, tag: str): self.file, self.ema, self.tag = Path(file), ema, tag
    def before_epoch(self): self.trained = False
    def after_step(self): self.trained = True

    def after_epoch(self):
        if not self.trained: return  # an epoch skipped while resuming: nothing new to save
        self.file.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.file, {"model": self.learn.model, "ema": self.ema}, self.learn.opt.opt,
                        {"epoch": self.epoch + 1, "n_epoch": self.n_epoch, "n_iter": len(self.learn.dls.train), "tag": self.tag,
                         "time": time.time(), "loss": float(self.learn.recorder.losses[-1])})
