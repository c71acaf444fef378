"""Figures for the lessons: image rows with titles, and masks drawn over their image."""
from __future__ import annotations
import numpy as np

__all__ = ["show_images", "overlay_mask", "show_masks"]


def show_images(images, titles=None, suptitle=None, size=2.2, cols=None):
    "A row (or grid) of PIL images with titles; returns the figure."
    import matplotlib.pyplot as plt
    images = list(images)
    cols = cols or len(images)
    rows = -(-len(images) // cols)
    fig, axs = plt.subplots(rows, cols, figsize=(size * cols, size * rows + (0.4 if suptitle else 0)), squeeze=False)
    for ax in axs.flat: ax.axis("off")
    for i, (ax, im) in enumerate(zip(axs.flat, images)):
        ax.imshow(im, interpolation="nearest")
        if titles: ax.set_title(titles[i], fontsize=8)
    if suptitle: fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def overlay_mask(image, mask, color=(255, 0, 255), alpha=0.5) -> np.ndarray:
    "HxWx3 uint8: `image` with the bool/float `mask` (any size; resized to the image) tinted in `color`."
    from PIL import Image
    img = np.asarray(image.convert("RGB"), np.float32)
    m = np.asarray(mask, np.float32)
    if m.shape != img.shape[:2]:
        m = np.asarray(Image.fromarray((m * 255).astype(np.uint8)).resize(img.shape[1::-1], Image.NEAREST), np.float32) / 255
    a = alpha * m[..., None]
    return (img * (1 - a) + np.array(color, np.float32) * a).round().astype(np.uint8)


def show_masks(image, masks: dict, suptitle=None, size=2.2):
    "The image, then each named mask drawn over it."
    return show_images([image] + [overlay_mask(image, m) for m in masks.values()], ["image"] + list(masks),
                       suptitle, size)
