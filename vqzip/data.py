"""Training images: listing, the held-out validation split, and random crops.

The validation split is every 20th image in sorted name order: fixed, so that design
choices are made on images no model was trained on. Kodak is never read here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from vqzip.jobs import IMAGE_SUFFIXES

VAL_EVERY = 20


def list_images(root: str | Path) -> list[Path]:
    files = sorted(p for p in Path(root).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images in {root}")
    return files


def split(files: list[Path], part: str) -> list[Path]:
    """'train' or 'val' part of a sorted image list."""
    if part == "val":
        return files[::VAL_EVERY]
    if part == "train":
        return [f for i, f in enumerate(files) if i % VAL_EVERY]
    raise ValueError(f"unknown split {part!r}")


def load_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


class CropSampler:
    """Random square crops with random horizontal flips, from images held in memory.

    With `colour` > 0, that fraction of crops is changed to teach the colours photos rarely hold
    (saturated primaries, flat areas): half of them become one flat colour, half get a flat
    rectangle pasted in; colours are drawn per channel from U(-64, 320) clipped to 0..255, so
    about a fifth of channel values sit at each end of the range."""

    def __init__(self, images: list[np.ndarray], size: int, seed: int, colour: float = 0.0):
        self.images = [im for im in images if min(im.shape[:2]) >= size]
        if not self.images:
            raise ValueError(f"no image is at least {size}x{size}")
        self.size, self.colour = size, colour
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> np.ndarray:
        """(n, 3, size, size) uint8."""
        out = np.empty((n, 3, self.size, self.size), np.uint8)
        for k in range(n):
            im = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(im.shape[0] - self.size + 1)
            x = self.rng.integers(im.shape[1] - self.size + 1)
            crop = im[y : y + self.size, x : x + self.size]
            if self.rng.random() < 0.5:
                crop = crop[:, ::-1]
            out[k] = crop.transpose(2, 0, 1)
            if self.colour and self.rng.random() < self.colour:
                self._paint(out[k])
        return out

    def _paint(self, crop: np.ndarray) -> None:
        colour = np.clip(self.rng.uniform(-64, 320, 3), 0, 255).round().astype(np.uint8)[:, None, None]
        if self.rng.random() < 0.5:
            crop[:] = colour
            return
        h, w = self.rng.integers(4, self.size // 2 + 1, 2)
        y, x = self.rng.integers(0, self.size - h + 1), self.rng.integers(0, self.size - w + 1)
        crop[:, y : y + h, x : x + w] = colour
