"""Your own photograph, made ready for a model: RGB, square, the model's size.

    photo = load_photo("my_cat.jpg", models)   # a path, an http(s) URL, a PIL image or a uint8 array

The editors take exactly what the model was built for (512x512 RGB for SD 1.5, 64x64 for the toy
model) and refuse anything else. `load_photo` gets a picture there in the plainest way, and says
what it did:

1. turn it upright (the camera's EXIF orientation), and make it RGB: transparency is laid on white,
   greyscale, palette and CMYK images are converted, 16-bit greyscale is scaled to 8 bits (v / 257);
2. centre-crop the largest square (nothing is stretched; the long side loses its two edges equally);
3. resize that square to the model's side with Lanczos filtering (it averages when shrinking, so a
   large photo does not alias).

To keep a different part of the picture, crop it yourself first, upright:
`ImageOps.exif_transpose(Image.open(path)).crop((left, top, right, bottom))` (a phone photo is often
stored sideways, with an EXIF tag that says so).
"""
from __future__ import annotations
import io
from pathlib import Path
import numpy as np
from PIL import Image, ImageOps

__all__ = ["load_photo"]


def _side(size) -> int:
    "The square side asked for: an int, or a Models (the image side it was built for, `latents.image_size`)."
    if hasattr(size, "vae"):
        from .latents import image_size
        size = image_size(size)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size must be the model's image side (an int >= 8) or the models themselves, got {size!r}")
    return int(size)


def _download(url: str, timeout: float = 30) -> tuple[Image.Image, str]:
    "The picture at an http(s) URL and its file name; a ConnectionError that says what to do if it cannot be fetched."
    import urllib.error, urllib.request
    name = url.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or url
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "course-utils"})   # some hosts refuse Python's own
        with urllib.request.urlopen(request, timeout=timeout) as r: data = r.read()
    except (urllib.error.URLError, OSError) as e:
        raise ConnectionError(f"could not download {url} ({getattr(e, 'reason', e)}). Offline, save the photo "
                              "and pass its path instead.") from e
    return _decode(io.BytesIO(data), name)


def _decode(source, name: str) -> tuple[Image.Image, str]:
    "The picture in a file (a path or bytes), read whole and turned upright, and its name."
    with Image.open(source) as im:
        im.load()
        return ImageOps.exif_transpose(im), name


def _open(photo) -> tuple[Image.Image, str]:
    "A PIL image and a short name for messages, from a path, an http(s) URL, a PIL image or a uint8 array."
    if isinstance(photo, str) and photo.lower().startswith(("http://", "https://")): return _download(photo)
    if isinstance(photo, (str, Path)):
        path = Path(photo).expanduser()
        if not path.is_file(): raise FileNotFoundError(f"no photo at {path}")
        return _decode(path, path.name)
    if isinstance(photo, Image.Image): return ImageOps.exif_transpose(photo), "photo"
    if isinstance(photo, np.ndarray):
        if photo.dtype != np.uint8 or photo.ndim not in (2, 3) or (photo.ndim == 3 and photo.shape[2] not in (3, 4)):
            raise ValueError(f"an array photo must be uint8, H x W or H x W x 3/4; got {photo.dtype} {photo.shape}")
        return Image.fromarray(photo), "array"
    raise TypeError(f"expected a file path, an http(s) URL, a PIL image or a uint8 numpy array, "
                    f"got {type(photo).__name__}")


def _rgb(im: Image.Image) -> Image.Image:
    "RGB; anything transparent is composited on white, 16-bit greyscale scaled to 8 bits."
    if im.mode == "RGB": return im
    if im.mode.startswith("I;16") or (im.mode == "I" and np.asarray(im).max() > 255):   # a 16-bit PNG or TIFF:
        return Image.fromarray((np.asarray(im, np.float64) / 257).round().astype(np.uint8)).convert("RGB")  # PIL would clip at 255
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def load_photo(photo, size=512, *, verbose: bool = True) -> Image.Image:
    """A photo of any size and mode -> a `size` x `size` RGB PIL image (centre crop, then Lanczos resize).

    photo: a file path, an http(s) URL (downloaded each time), a PIL image or a uint8 array (H x W or
    H x W x 3/4), of any size and mode;
    size: the side in pixels, or the `Models` to edit it with (their VAE's sample size);
    verbose: print what was done, e.g. 'cat.jpg: 451x300 RGB -> centre crop 300x300 (x 75..375) -> 512x512 RGB'."""
    side = _side(size)
    im, name = _open(photo)
    w, h = im.size
    if min(w, h) == 0: raise ValueError(f"{name} is empty ({w}x{h})")
    mode, im = im.mode, _rgb(im)
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    steps = [f"{name}: {w}x{h} {mode}"]
    if (w, h) != (s, s):
        im = im.crop((left, top, left + s, top + s))
        where = f"x {left}..{left + s}" if w > h else f"y {top}..{top + s}"
        steps.append(f"centre crop {s}x{s} ({where})")
    if s != side:
        im = im.resize((side, side), Image.Resampling.LANCZOS)
    steps.append(f"{side}x{side} RGB")
    if verbose: print(" -> ".join(steps))
    return im
