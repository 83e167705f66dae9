"""Mutations of valid .vqz files and the verdict on decoding each: the fuzzer behind
tests/test_fuzz.py (a few seconds) and bench/fuzz.py (as long as you like).

Mutations: truncation at any byte; 1 to 8 flipped bits; a run of 1 to 8 header bytes set to
random values; each of the latter two also with the CRC-32 recomputed ("forged"), which gets
past the checksum into the parser, the model lookup, the range decoder and the checksum of the
decoded codes.

Verdicts: `error` (a VqzError, the one-line kind the command line reports), `exact` (decoded
to the original image), `consistent` (a forged header decoded to what it now declares: size
and mode), `wrong` (decoded to something else without an error), `crash` (any other
exception), `hang` (over the time limit). A sound decoder has no wrong, crash or hang. With
preview=True the same is asked of the preview decoder (`codec.preview`), against the original's
preview.
"""
from __future__ import annotations

import re
import signal
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from vqzip import codec, container
from vqzip.errors import VqzError

KINDS = ("truncate", "flip", "flip+crc", "edit", "edit+crc")


@dataclass
class Outcome:
    kind: str
    verdict: str
    detail: str


def mutate(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    if kind == "truncate":
        return bytes(b[: int(rng.integers(len(b)))])
    if kind.startswith("flip"):
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(len(b) - 4 if kind.endswith("crc") else len(b)))
            b[i] ^= 1 << int(rng.integers(8))
    else:  # edit: a run of header bytes (the first 60 cover every field of short names)
        start = int(rng.integers(min(60, len(b) - 4)))
        for i in range(start, min(start + int(rng.integers(1, 9)), len(b) - 4)):
            b[i] = int(rng.integers(256))
    if kind.endswith("crc"):
        b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])))
    return bytes(b)


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def judge(data: bytes, kind: str, original: np.ndarray, seconds: int = 10, preview: bool = False) -> Outcome:
    """Decode `data` (a mutation of a file whose decoding is `original`) and give the verdict."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        decoded = (codec.preview if preview else codec.decompress)(data)
    except _Timeout:
        return Outcome(kind, "hang", f"over {seconds} s")
    except VqzError as e:
        return Outcome(kind, "error", re.sub(r"\d+", "N", str(e).split(":")[0])[:70])  # numbers grouped
    except Exception as e:  # noqa: BLE001 - exactly what the fuzzer is looking for
        return Outcome(kind, "crash", f"{type(e).__name__}: {e}"[:200])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    pixels = np.asarray(decoded.image)
    if pixels.shape == original.shape and np.array_equal(pixels, original):
        return Outcome(kind, "exact", "")
    h = container.unpack(data)[0]
    size = codec.preview_size(h) if preview else (h.width, h.height)
    if kind.endswith("crc") and decoded.image.size == size and decoded.image.mode == h.mode:
        return Outcome(kind, "consistent", "")
    return Outcome(kind, "wrong", f"{decoded.image.mode} {decoded.image.size}")


def run(files: list[bytes], tries: int, seed: int = 0, seconds: int = 10, preview: bool = False) -> list[Outcome]:
    """`tries` mutations spread over the files and the kinds, each judged."""
    rng = np.random.default_rng(seed)
    originals = [np.asarray((codec.preview if preview else codec.decompress)(f).image) for f in files]
    out = []
    for n in range(tries):
        k = n % len(files)
        kind = KINDS[(n // len(files)) % len(KINDS)]
        out.append(judge(mutate(files[k], kind, rng), kind, originals[k], seconds, preview))
    return out
