"""Range coding of symbols under categorical distributions (the only user of constriction).

The encoder and the decoder take the same float32 probability rows, one row per symbol, in
the same calls; constriction quantizes each row to 24-bit fixed point with every symbol kept
at a non-zero probability (`perfect=False`, set identically at both ends), so any symbol can
be coded and a row need not sum exactly to 1. Compressed words are stored little-endian.
"""
from __future__ import annotations

import math

import constriction
import numpy as np

from vqzip.errors import FormatError

_FAMILY = constriction.stream.model.Categorical(perfect=False)
PRECISION = 24  # bits of constriction's fixed-point probabilities; each symbol keeps at least one unit


def min_stream_bytes(symbols: int, alphabet: int) -> int:
    """A lower bound on the bytes of any stream of `symbols` symbols, each of an `alphabet`-symbol
    categorical: since every symbol keeps at least 2**-PRECISION of the probability, none costs
    under -log2(1 - (alphabet - 1) / 2**PRECISION) bits, whatever the prior; the coder's 64-bit
    state holds up to 64 bits unwritten, and one symbol or more make at least one 32-bit word.
    (A file whose stream is shorter was forged or cut: refused before any decoding.)"""
    if symbols <= 0:
        return 0
    bits = symbols * -math.log2(1 - (alphabet - 1) / 2**PRECISION)
    return 4 * max(1, math.ceil((bits - 64) / 32))


class SymbolEncoder:
    def __init__(self) -> None:
        self._coder = constriction.stream.queue.RangeEncoder()

    def encode(self, symbols: np.ndarray, probs: np.ndarray) -> None:
        """Append symbols (n,) coded under probs (n, K); symbols must lie in [0, K)."""
        self._coder.encode(np.ascontiguousarray(symbols, dtype=np.int32), _FAMILY,
                           np.ascontiguousarray(probs, dtype=np.float32))

    def to_bytes(self) -> bytes:
        return self._coder.get_compressed().astype("<u4").tobytes()


class SymbolDecoder:
    def __init__(self, data: bytes) -> None:
        if len(data) % 4:
            raise FormatError(f"coded stream of {len(data)} bytes is not a whole number of 32-bit words")
        self._coder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))

    def decode(self, probs: np.ndarray) -> np.ndarray:
        """The next len(probs) symbols, each decoded under its row of probs (n, K). A stream that
        no encoder could have written (constriction asserts) is a FormatError."""
        try:
            return self._coder.decode(_FAMILY, np.ascontiguousarray(probs, dtype=np.float32))
        except (AssertionError, ValueError, RuntimeError) as e:
            raise FormatError(f"coded stream is damaged: {e}") from None
