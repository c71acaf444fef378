"""Load the parts of a Stable Diffusion model: the course's toy model, a local folder, or a hub id.

    m = load_models("toy")                                          # offline, ships with the course
    m = load_models("stable-diffusion-v1-5/stable-diffusion-v1-5")  # needs the hub once (e.g. on Colab)

Every model is a diffusers StableDiffusionPipeline folder (model_index.json, tokenizer/,
text_encoder/, vae/, unet/, scheduler/); the parts are loaded one by one, frozen and in eval mode,
with DDIM as the scheduler. `SD15_CONFIGS` and `random_sd15` give SD 1.5's real architecture
(randomly initialised, no download) for tests and for looking at its shapes.
"""
from __future__ import annotations
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
import torch

__all__ = ["Models", "load_models", "ModelNotAvailableError", "SD15_CONFIGS", "random_sd15", "choose_weights", "hub_files"]

PARTS = ("text_encoder", "vae", "unet")  # the parts with weights; the rest is configs and the tokenizer
CONFIGS = ["model_index.json", "scheduler/scheduler_config.json", "tokenizer/*",
           *(f"{p}/config.json" for p in PARTS)]
# diffusers/transformers weight names: model[.variant][-00001-of-00002].safetensors and their shard index
_WEIGHTS = re.compile(r"^[^.]+(?:\.(?P<variant>[^.-]+))?(?:-\d+-of-\d+)?\.safetensors$")
_INDEX = re.compile(r"^[^.]+\.safetensors\.index(?:\.(?P<variant>[^.]+))?\.json$")
_PICKLES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
SD_FOLDER = "model_index.json, tokenizer/, text_encoder/, vae/, unet/ and scheduler/"
CHOICES = ('"toy" (the course\'s offline model), a local diffusers Stable Diffusion folder, '
           'or a Hugging Face hub id like "stable-diffusion-v1-5/stable-diffusion-v1-5"')
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

SD15_CONFIGS: dict[str, dict[str, Any]] = {
    "unet": dict(sample_size=64, in_channels=4, out_channels=4,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                 block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=768,
                 attention_head_dim=8, norm_num_groups=32, flip_sin_to_cos=True, freq_shift=0, act_fn="silu",
                 downsample_padding=1, mid_block_scale_factor=1, norm_eps=1e-5),
    "vae": dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
                layers_per_block=2, latent_channels=4, sample_size=512, norm_num_groups=32,
                scaling_factor=0.18215, act_fn="silu"),
    "text_encoder": dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                         num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                         projection_dim=768),
    "scheduler": dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                      beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False, steps_offset=1),
}


class ModelNotAvailableError(OSError):
    "A hub model that is neither in the local cache nor downloadable (offline or no network)."


@dataclass
class Models:
    "The five parts of a Stable Diffusion model, and where they live."
    tokenizer: Any
    text_encoder: Any
    vae: Any
    unet: Any
    scheduler: Any
    device: torch.device
    dtype: torch.dtype
    name: str
    max_rows: dict = field(default_factory=dict)  # {"unet": k, "vae": k}: rows per call at most (chunks.py)

    def to(self, device=None, dtype=None) -> "Models":
        """Move the text encoder, VAE and UNet to `device` and/or `dtype` (in place); return self. A move to
        another device or dtype forgets `max_rows`: the bounds were the old device's memory (chunks.py). The
        scheduler's ᾱ table goes back to the CPU, where diffusers keeps it (its `add_noise` moves it to the
        device of the latents it noised, and a later `step` on another device would fail)."""
        device = torch.device(device) if device is not None else self.device
        dtype = dtype or self.dtype
        if (device, dtype) != (self.device, self.dtype): self.max_rows = {}
        self.device, self.dtype = device, dtype
        for m in (self.text_encoder, self.vae, self.unet):
            m.to(self.device)
            if m.dtype != self.dtype:
                with _quiet_diffusers(): m.to(self.dtype)  # diffusers 0.42 warns on every dtype cast
        s = self.scheduler   # DDIM's add_noise leaves its ᾱ table on the last latents' device: a fresh one, on the CPU
        if isinstance(getattr(s, "alphas_cumprod", None), torch.Tensor) and s.alphas_cumprod.device.type != "cpu":
            s.alphas_cumprod = type(s).from_config(s.config).alphas_cumprod
        return self

    def pipeline(self, cls=None, **parts):
        """diffusers' own pipeline `cls` (default `StableDiffusionPipeline`) on these very modules, to
        compare with; extra or replaced parts as keywords (`scheduler=...`, `inverse_scheduler=...`)."""
        if cls is None: from diffusers import StableDiffusionPipeline as cls
        base = dict(vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer, unet=self.unet,
                    scheduler=self.scheduler, safety_checker=None, feature_extractor=None)
        p = cls(**{**base, **parts}, requires_safety_checker=False)
        p.set_progress_bar_config(disable=True)
        return p


@contextmanager
def _quiet_diffusers():
    "Silence diffusers' warnings (its `to(dtype)` warns about 'modules kept in float32' even when there are none)."
    from diffusers.utils import logging as dlogging
    old = dlogging.get_verbosity()
    dlogging.set_verbosity_error()
    try: yield
    finally: dlogging.set_verbosity(old)


@contextmanager
def _no_loading_bar():
    "No 'Loading weights' bar from transformers for a model already on disk (the hub's download bars stay)."
    from transformers.utils import logging as tlogging
    was = tlogging.is_progress_bar_enabled()
    tlogging.disable_progress_bar()
    try: yield
    finally:
        if was: tlogging.enable_progress_bar()


def default_device() -> torch.device:
    "CUDA when there is a GPU, else the CPU."
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def hub_offline() -> bool:
    "Whether the hub is switched off (huggingface_hub's constant or the HF_HUB_OFFLINE variable)."
    from huggingface_hub import constants
    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in (
        "1", "true", "yes", "on")


def _network_errors() -> tuple[type[BaseException], ...]:
    "The exceptions that mean the hub could not be reached (huggingface_hub's and its HTTP client's)."
    import importlib
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled
    errs = [LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError, TimeoutError]
    for client in ("httpx2", "httpx"):  # huggingface_hub 2.x uses httpx2, 1.x httpx
        try: errs.append(importlib.import_module(client).TransportError)
        except (ImportError, AttributeError): pass
    return tuple(errs)


def _not_available(repo_id: str) -> ModelNotAvailableError:
    "The error for a hub model we cannot get, with how to get it."
    return ModelNotAvailableError(
        f"{repo_id!r} is not in the local Hugging Face cache and the hub cannot be reached "
        f"(HF_HUB_OFFLINE=1 or no network). Run load_models({repo_id!r}) once with network access "
        f"(e.g. on Colab) to download it, or use load_models(\"toy\"), the course's offline model.")


def choose_weights(files, dtype: torch.dtype = torch.float32) -> dict[str, str | None]:
    """For each part with weights, the variant to load (None: the plain files), from a folder's or a hub
    repository's file list (paths like 'unet/diffusion_pytorch_model.fp16.safetensors').

    float16 takes the 'fp16' variant where the part has one (half the download), else the plain
    weights (cast when loaded); other dtypes take the plain ones (a part without plain weights: its
    first variant by name). Safetensors only: a part whose weights are pickles alone (.bin, .ckpt) is
    an error, because unpickling a file can run its code."""
    files = [str(f).replace("\\", "/") for f in files]
    want = "fp16" if dtype == torch.float16 else None
    out = {}
    for part in PARTS:
        names = [f.split("/", 1)[1] for f in files if f.startswith(part + "/") and f.count("/") == 1]
        variants = {m["variant"] for n in names if (m := _WEIGHTS.match(n))}
        if not variants:
            pickles = [n for n in names if n.endswith(_PICKLES)]
            if pickles:
                raise FileNotFoundError(
                    f"{part}/ holds only pickled weights ({', '.join(sorted(pickles))}): the course loads safetensors "
                    "only, since unpickling a file can run code. Convert them once in a trusted environment "
                    "(load with diffusers, then save_pretrained(..., safe_serialization=True)) or pick a "
                    "repository that ships .safetensors.")
            raise FileNotFoundError(f"{part}/ has no .safetensors weights; a Stable Diffusion folder must contain {SD_FOLDER}")
        out[part] = want if want in variants else None if None in variants else sorted(variants)[0]
    return out


# folders that only models the course's helpers cannot run have: -> what the model is
_OTHER_MODELS = {"text_encoder_2": "Stable Diffusion XL (two text encoders)", "transformer": "a diffusion transformer "
                 "(SD 3, FLUX, PixArt: no UNet)", "prior": "a two-stage model with a prior (Kandinsky, unCLIP)"}


def _check_architecture(files: list[str]):
    "A ValueError for a repository or folder of a model the helpers cannot run, before anything is fetched or loaded."
    tops = {f.split("/", 1)[0] for f in files if "/" in f}
    for top, what in _OTHER_MODELS.items():
        if top in tops:
            raise ValueError(f"this is {what}, with a {top}/ folder: the course's helpers run Stable Diffusion 1.x "
                             "and 2.x, one UNet conditioned on one CLIP text encoder (e.g. "
                             "stable-diffusion-v1-5/stable-diffusion-v1-5 or stabilityai/stable-diffusion-2-1)")


def hub_files(files, dtype: torch.dtype = torch.float32) -> list[str]:
    """The files of a hub repository that loading it in `dtype` uses: configs, tokenizer, and one set of
    safetensors weights per part (see `choose_weights`). Never the safety checker, the feature
    extractor, pickles, other variants (fp16 / non_ema) or single-file checkpoints at the top."""
    import fnmatch
    _check_architecture(files)   # before anything is fetched (a local folder: _check_folder)
    chosen = choose_weights(files, dtype)
    def used(f: str) -> bool:
        if any(fnmatch.fnmatch(f, c) for c in CONFIGS): return True
        part, _, name = f.partition("/")
        if part not in chosen or "/" in name: return False
        m = _WEIGHTS.match(name) or _INDEX.match(name)
        return m is not None and m["variant"] == chosen[part]
    return sorted(f for f in files if used(f))


def resolve(name_or_path: str, cache_dir=None, dtype: torch.dtype = torch.float32) -> Path:
    "The local diffusers folder for 'toy', a folder, or a hub id (from the cache, or downloaded: only what `dtype` uses)."
    if name_or_path == "toy": return _toy_folder()
    path = Path(name_or_path).expanduser()
    if path.is_dir(): return _check_folder(path)
    if path.is_file():   # a single-file checkpoint (model.safetensors / .ckpt), as model sites share them
        raise ValueError(f"{name_or_path!r} is one file, and the course loads a diffusers folder. Convert it once, "
                         "with network for its configs: StableDiffusionPipeline.from_single_file(path)"
                         ".save_pretrained(folder) (safetensors only: a .ckpt is a pickle, which can run code), "
                         f"then load_models(folder). Or choose {CHOICES}.")
    if not _HUB_ID.match(str(name_or_path)):
        raise ValueError(f"{name_or_path!r} is neither an existing folder nor a hub id shaped like "
                         f"'owner/name'. Choose {CHOICES}.")
    return _check_folder(_snapshot(str(name_or_path), cache_dir, dtype))


def _toy_folder() -> Path:
    "The toy model's folder, or a FileNotFoundError saying how to rebuild it."
    from .toyworld.model import TOY_PATH
    if not (TOY_PATH / "model_index.json").is_file():
        raise FileNotFoundError(f"The toy model's weights are missing ({TOY_PATH}). "
                                "Rebuild them with `python scripts/train_toy_sd.py`.")
    return TOY_PATH


def _check_folder(path: Path) -> Path:
    "`path` if it looks like a diffusers SD folder, else a FileNotFoundError saying what it must hold."
    _check_architecture(folder_files(path))   # an SD 3 or FLUX folder has no unet/: say what it is instead
    missing = [p for p in ("model_index.json", "unet") if not (path / p).exists()]
    if missing:
        raise FileNotFoundError(f"{path} is not a diffusers Stable Diffusion folder: it lacks "
                                f"{' and '.join(missing)}. Such a folder must contain {SD_FOLDER}.")
    return path


def folder_files(path: Path) -> list[str]:
    "The files under `path`, as 'part/name' paths with forward slashes."
    return [f.relative_to(path).as_posix() for f in Path(path).rglob("*") if f.is_file()]


def _snapshot(repo_id: str, cache_dir=None, dtype: torch.dtype = torch.float32) -> Path:
    """The snapshot folder of hub model `repo_id`: from the cache when offline, else downloading exactly
    `hub_files(...)` of the repository's listing (files already cached are not fetched again)."""
    from huggingface_hub import HfApi, snapshot_download
    try:
        if hub_offline():
            return Path(snapshot_download(repo_id, cache_dir=cache_dir, local_files_only=True))
        files = HfApi().list_repo_files(repo_id)
        return Path(snapshot_download(repo_id, cache_dir=cache_dir, allow_patterns=hub_files(files, dtype)))
    except _network_errors() as e:
        raise _not_available(repo_id) from e


def load_models(name_or_path: str = "toy", device=None, dtype=None, *, cache_dir=None) -> Models:
    """Load tokenizer, text encoder, VAE, UNet and DDIM scheduler of a Stable Diffusion model, frozen.

    device: default the CPU for the toy model, on every machine (the lessons' own cells make their noise
    and read their tensors on the CPU, and their saved outputs are the CPU's: on a Colab GPU they run as
    on a laptop; pass device="cuda" to move it), and for any other model CUDA when there is a GPU, else
    the CPU. dtype: default float16 for a real model on a CUDA GPU, else float32 (Apple's MPS too). A hub
    id downloads only what it uses (`hub_files`), the fp16 variant for float16 where the repository has
    one; weights are read from safetensors only."""
    if device is not None: device = torch.device(device)
    else: device = torch.device("cpu") if name_or_path == "toy" else default_device()
    if dtype is None:
        dtype = torch.float16 if device.type == "cuda" and name_or_path != "toy" else torch.float32
    path = resolve(name_or_path, cache_dir, dtype)  # first: a missing model fails fast, before the heavy imports
    variant = choose_weights(folder_files(path), dtype)
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer
    p = str(path)
    load = lambda cls, part: cls.from_pretrained(p, subfolder=part, dtype=dtype, variant=variant[part],
                                                  use_safetensors=True)
    tokenizer = CLIPTokenizer.from_pretrained(p, subfolder="tokenizer")
    with _no_loading_bar(): text_encoder = load(CLIPTextModel, "text_encoder")
    vae, unet = load(AutoencoderKL, "vae"), load(UNet2DConditionModel, "unet")
    scheduler = DDIMScheduler.from_pretrained(p, subfolder="scheduler")
    for m in (text_encoder, vae, unet): m.eval().requires_grad_(False)
    return Models(tokenizer, text_encoder, vae, unet, scheduler, device, dtype, str(name_or_path)).to()


def random_sd15(dtype: torch.dtype = torch.float32, device="cpu"):
    """SD 1.5's UNet, VAE and CLIP text encoder with random weights: the real architecture, no download.
    Built directly on `device` ("cuda": no trip through the CPU; "meta": shapes only, no memory)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    with _default_dtype(dtype), torch.device(device):  # built directly in `dtype`: no float32 copy of the 860M-parameter UNet
        unet = UNet2DConditionModel(**SD15_CONFIGS["unet"])
        vae = AutoencoderKL(**SD15_CONFIGS["vae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**SD15_CONFIGS["text_encoder"]))
    return unet.eval(), vae.eval(), text_encoder.eval()


@contextmanager
def _default_dtype(dtype: torch.dtype):
    "Temporarily make `dtype` torch's default floating dtype."
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try: yield
    finally: torch.set_default_dtype(old)
