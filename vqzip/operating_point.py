"""An operating point: everything, beyond the model's weights, that decides what an image codes to.

A quality level is a number and an operating point (`vqzip.zoo.Level`); the codec codes with one
(`vqzip.codec.compress(image, model, point)`), the ladder measures and chooses among them
(`vqzip.ladder`), and a target search (`vqzip.api.compress_to_target`) moves one knob at a time
(`dataclasses.replace`). A knob a later model needs goes here, with a default that means "as
before", so every place a point travels carries it.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class OperatingPoint:
    """model: the shipped model's name (or the name a model folder loaded under);
    maps: how many of the model's code maps are coded, counted from the first, in coding order
    (residual stages, then finer latents; None: all the model has);
    scale: the image is resampled by it before coding (fewer or more codes per pixel);
    lam: the RDO multiplier codes are chosen with (0: the nearest code; `vqzip.rdo`);
    skip: the model's skippable map is coded only in the blocks where its codes save more than
    `skip` squared error per bit (0: coded whole; `vqzip.fine_skip`);
    anchor: the rate anchor a lattice map is coded at (`vqzip.models.lattice`: 0 to the model's
    anchors - 1, in steps of 1/ANCHOR_STEPS; higher is finer), which the file records; None: the
    model codes no lattice map (a lattice model refuses a point without one)."""

    model: str
    maps: int | None = None
    scale: Fraction = Fraction(1)
    lam: float = 0.0
    skip: float = 0.0
    anchor: Fraction | None = None
