"""The qualities a sweep can measure on decoded pixels, and `--metrics`, the list that chooses them.

    METRICS["psnr"], METRICS["ms-ssim"], METRICS["ssimulacra2"]: a Metric each
    metrics_of("psnr,ms-ssim" or None, note) -> the chosen Metrics, in METRICS' order

Every one is higher-is-better. SSIMULACRA 2 needs the `ssimulacra2` package (vqzip's eval
extra) and takes seconds an image, so it is measured by default only where the package imports.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from vqzip.errors import UsageError
from vqzip.extras import require


@dataclass(frozen=True)
class Metric:
    name: str  # as --metrics names it
    key: str  # its key in a summary (CompressAI's results layout) and in bd-rate.json
    label: str  # a figure's axis
    short: str  # a table's
    unit: str = ""  # after the short name in a column's head


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("psnr", "psnr-rgb", "PSNR-RGB (dB)", "PSNR", "dB"),
    Metric("ms-ssim", "ms-ssim-rgb-db", "MS-SSIM (dB)", "MS-SSIM", "dB"),
    Metric("ssimulacra2", "ssimulacra2", "SSIMULACRA 2", "SSIMULACRA 2"),
)}
SSIMULACRA2_NEEDS = "rd-curve's SSIMULACRA 2 (--metrics ssimulacra2)"


def metrics_of(text: str | None, note: Callable[[str], None] = lambda line: None) -> tuple[Metric, ...]:
    """The metrics of a comma-separated list of names, in METRICS' order; for None, every one
    whose package imports, note(line) telling of SSIMULACRA 2 skipped. An unknown name or an empty
    list is a UsageError; SSIMULACRA 2 asked for and not installed, a MissingExtra (one line)."""
    if text is None:
        try:
            require("ssimulacra2", "eval", SSIMULACRA2_NEEDS)
            return tuple(METRICS.values())
        except ModuleNotFoundError as e:
            note(f"vqzip: note: skipping SSIMULACRA 2: {e}")
            return tuple(m for m in METRICS.values() if m.name != "ssimulacra2")
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise UsageError(f"{unknown[0]!r} is not a metric; known: {', '.join(METRICS)}" if unknown
                         else f"names no metric; known: {', '.join(METRICS)}", "--metrics")
    if "ssimulacra2" in names:
        require("ssimulacra2", "eval", SSIMULACRA2_NEEDS)
    return tuple(m for m in METRICS.values() if m.name in names)
