"""Range coding of symbols under categorical distributions (the only user of constriction).

The encoder and the decoder take the same float32 probability rows, one row per symbol, in
the same calls; constriction quantizes each row to 24-bit fixed point with every symbol kept
at a non-zero probability (`perfect=False`, set identically at both ends), so any symbol can
be coded and a row need not sum exactly to 1. Compressed words are stored little-endian.
"""
from __future__ import annotations

import constriction
import numpy as np

from vqzip.errors import FormatError

_FAMILY = constriction.stream.model.Categorical(perfect=False)


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
