"""glibc malloc settings for the `vqzip` command's own process (the Python API leaves its host's
allocator alone): what keeps coding a large image within bounded memory. Elsewhere than glibc,
nothing is done.

- One arena: glibc gives each thread that allocates its own heap, and memory freed in one is not
  reused by another. The network's tiles, run by a thread pool, peaked at 1.32 GB coding and
  decoding a 4 MP image where one arena peaks at 0.98 GB, at the same speed.
- Large images: the network's tiles allocate tensors of megabytes (a 64-channel float tensor over
  a tile's context at 1/2 resolution is 63 MB), and glibc's mmap threshold, which rises after
  each large free up to 32 MB, puts many of them in the heap, where the freed tiles' memory
  fragments and stays resident. Compressing a 16 MP image with a fine-level model (λ 0.01, 3
  maps) peaked at 2076 MB, and at 1340 MB with the threshold fixed at 4 MB, each such tensor then
  its own mapping, returned when freed. The page faults cost time (a 768x512 compress took 17%
  longer), so the threshold is fixed only once an image of LARGE_IMAGE pixels or more is coded,
  and stays so for the process (glibc has no way back to its moving threshold).
- Training: each step allocates and frees the same tensors, many over 32 MB (glibc's largest
  threshold), so each was a fresh mapping and its pages faulted in again every step. Kept in the
  heap, with the heap never trimmed, the pages stay mapped (FOR_TRAINING).
"""
from __future__ import annotations

import ctypes

LARGE_IMAGE = 4_000_000  # pixels; at 4 MP the same compress peaked at 1684 MB, 1171 MB fixed
MMAP_THRESHOLD = 4 << 20
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -2, -3, -4, -8
FOR_TRAINING = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 1 << 30, _M_TOP_PAD: 256 << 20}


def _mallopt(param: int, value: int) -> None:
    try:
        ctypes.CDLL("libc.so.6").mallopt(param, value)
    except (OSError, AttributeError):  # not glibc
        pass


def one_arena() -> None:
    """One malloc arena for every thread of the process."""
    _mallopt(_M_ARENA_MAX, 1)


def for_training() -> None:
    """No mappings of their own for large blocks, and freed memory kept, for a training process."""
    for param, value in FOR_TRAINING.items():
        _mallopt(param, value)


def for_image(pixels: int) -> None:
    """Before coding an image of this many pixels: large ones get the fixed mmap threshold."""
    if pixels >= LARGE_IMAGE:
        _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
