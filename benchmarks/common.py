"""What the benchmarks share: a timer, and diffusers' own pipelines built on a `Models` bundle."""
import time


def timed(f):
    "(f(), seconds it took)."
    t0 = time.perf_counter(); out = f(); return out, time.perf_counter() - t0


def reference_pipeline(models, cls, **parts):
    "diffusers pipeline `cls` on the very same modules as `models` (extra or replaced parts as keywords)."
    base = dict(vae=models.vae, text_encoder=models.text_encoder, tokenizer=models.tokenizer, unet=models.unet,
                scheduler=models.scheduler, safety_checker=None, feature_extractor=None)
    p = cls(**{**base, **parts}, requires_safety_checker=False)
    p.set_progress_bar_config(disable=True)
    return p
