"""The judge: a small CNN that reads every attribute of a ToyWorld scene off a 64x64 image.

One classification head per attribute (`ATTRIBUTES`: each object's shape, colour, texture and
accessory, and the background). Trained on renders with noise, blur and colour jitter, so that it
also reads the slightly imperfect images a diffusion model makes. Lessons and benchmarks use it to
score prompt adherence (`score(image, scene)`) and edit success.
"""
from __future__ import annotations
import json
from pathlib import Path
import numpy as np
import torch
from torch import nn
from PIL import Image
from .scene import ATTRIBUTES, Scene

__all__ = ["Judge", "JudgeNet", "load_judge", "JUDGE_PATH", "to_judge_input"]

JUDGE_PATH = Path(__file__).resolve().parents[1] / "weights" / "judge"


def _block(ci, co, stride):
    return nn.Sequential(nn.Conv2d(ci, co, 3, stride, 1, bias=False), nn.BatchNorm2d(co), nn.ReLU(inplace=True))


class JudgeNet(nn.Module):
    "64x64 RGB in [-1, 1] -> a dict of logits, one tensor (B x n_values) per attribute."
    def __init__(self, attributes: dict = ATTRIBUTES, width: int = 32):
        super().__init__()
        self.attributes = {k: tuple(v) for k, v in attributes.items()}
        w = width
        self.body = nn.Sequential(_block(3, w, 1), _block(w, w, 2), _block(w, 2 * w, 2), _block(2 * w, 4 * w, 2),
                                  _block(4 * w, 4 * w, 2), nn.Flatten(), nn.Linear(16 * 4 * w, 256), nn.ReLU(inplace=True))
        self.heads = nn.ModuleDict({k.replace(".", "_"): nn.Linear(256, len(v)) for k, v in self.attributes.items()})

    def forward(self, x):
        h = self.body(x)
        return {k: self.heads[k.replace(".", "_")](h) for k in self.attributes}


def to_judge_input(images) -> torch.Tensor:
    "PIL image(s) (resized to 64x64) or a (B x) 3 x 64 x 64 tensor in [-1, 1] -> a Bx3x64x64 float tensor in [-1, 1]."
    if isinstance(images, torch.Tensor):
        x = images if images.ndim == 4 else images[None]
        if tuple(x.shape[1:]) != (3, 64, 64):
            raise ValueError(f"the judge reads 3x64x64 images (a tensor in [-1, 1]), got a tensor of shape {tuple(images.shape)}")
        return x.float()
    if isinstance(images, Image.Image): images = [images]
    arrs = []
    for im in images:
        if not isinstance(im, Image.Image): raise TypeError(f"the judge reads PIL images or tensors, got {type(im).__name__}")
        if im.size != (64, 64): im = im.resize((64, 64), Image.BILINEAR)
        arrs.append(np.asarray(im.convert("RGB"), np.float32))
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2) / 127.5 - 1


class Judge:
    "Reads attributes off images: `predict(images)` -> list of {attribute: value}; `score(image, scene)`."
    def __init__(self, net: JudgeNet): self.net = net.eval()

    @torch.no_grad()
    def predict(self, images) -> list[dict]:
        x = to_judge_input(images).to(next(self.net.parameters()).device)
        logits = self.net(x)
        idx = {k: v.argmax(-1).tolist() for k, v in logits.items()}
        return [{k: self.net.attributes[k][idx[k][i]] for k in logits} for i in range(len(x))]

    def score(self, image, scene: Scene) -> dict:
        "attribute -> bool: does `image` (one image) show that attribute of `scene`?"
        preds = self.predict(image)
        if len(preds) != 1: raise ValueError(f"score reads one image, got {len(preds)}: score each, or `predict` them all")
        pred = preds[0]
        return {k: pred[k] == v for k, v in scene.attributes().items()}

    def save(self, path=JUDGE_PATH):
        from safetensors.torch import save_file
        path = Path(path); path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(path / "judge.safetensors"))
        (path / "config.json").write_text(json.dumps({"attributes": self.net.attributes}, indent=1))


def load_judge(path=JUDGE_PATH, device="cpu") -> Judge:
    "The judge shipped with the course (or one saved at `path`)."
    from safetensors.torch import load_file
    path = Path(path)
    if not (path / "judge.safetensors").exists():
        raise FileNotFoundError(f"no judge weights in {path}; train them with `python scripts/train_judge.py`")
    net = JudgeNet(json.loads((path / "config.json").read_text())["attributes"])
    net.load_state_dict(load_file(str(path / "judge.safetensors")))
    return Judge(net.to(device))
