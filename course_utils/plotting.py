"""Figures for the lessons: image rows with titles, and masks drawn over their image."""
from __future__ import annotations
import numpy as np

__all__ = ["show_images", "overlay_mask", "show_masks"]


def _array(x):
    "A torch tensor (on any device, e.g. a mask or map on the GPU) as a numpy array; anything else as it is."
    return x.detach().float().cpu().numpy() if hasattr(x, "detach") else x


def show_images(images, titles=None, suptitle=None, size=2.2, cols=None):
    "A row (or grid) of PIL images (or arrays, or 2-D tensors on any device) with titles; returns the figure."
    import matplotlib.pyplot as plt
    images = list(images)
    if not images: raise ValueError("no images to show")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images: give one per image ('' for none)")
    cols = cols or len(images)
    rows = -(-len(images) // cols)
    fig, axs = plt.subplots(rows, cols, figsize=(size * cols, size * rows + (0.4 if suptitle else 0)), squeeze=False)
    for ax in axs.flat: ax.axis("off")
    for i, (ax, im) in enumerate(zip(axs.flat, images)):
        ax.imshow(_array(im), interpolation="nearest")
        if titles: ax.set_title(titles[i], fontsize=8)
    if suptitle: fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def overlay_mask(image, mask, color=(255, 0, 255), dim=0.6) -> np.ndarray:
    """HxWx3 uint8: `image` seen through `mask` (bool or soft in [0, 1], an array or a tensor on any
    device, any size; resized to the image).

    Outside the mask the image is dimmed by `dim` (in proportion for a soft mask) and the mask's
    outline (level 0.5, holes too) is drawn in `color`, one pixel wide, on the inside; inside, the
    image keeps its own colours, so a mask over an object of any colour stays readable. A coarse mask
    (a 16x16 latent grid, a 4x4 attention map) is resized with nearest-neighbour: its cells stay visible.
    OpenCV does the resizing and traces the outline (`cv2.findContours`)."""
    import cv2
    img = np.asarray(image.convert("RGB"), np.float32) if hasattr(image, "convert") else np.asarray(image, np.float32)
    if img.ndim == 2: img = np.stack([img] * 3, -1)                    # a grey H x W array
    if img.ndim != 3 or img.shape[-1] != 3: raise ValueError(f"image must be PIL, H x W or H x W x 3, got shape {img.shape}")
    m = np.asarray(_array(mask), np.float32)
    if m.ndim != 2: raise ValueError(f"mask must be 2-D (H x W), got shape {m.shape}")
    if m.shape != img.shape[:2]: m = cv2.resize(m, img.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    out = np.ascontiguousarray(img * (1 - dim * (1 - m.clip(0, 1)))[..., None])
    outline, _ = cv2.findContours((m > 0.5).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, outline, -1, tuple(float(c) for c in color), thickness=1)
    return out.round().astype(np.uint8)


def show_masks(image, masks: dict, suptitle=None, size=2.2):
    "The image, then each named mask drawn over it."
    return show_images([image] + [overlay_mask(image, m) for m in masks.values()], ["image"] + list(masks),
                       suptitle, size)
