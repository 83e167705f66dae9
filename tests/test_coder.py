import numpy as np
import pytest

from vqzip.coder import SymbolDecoder, SymbolEncoder
from vqzip.errors import FormatError


@pytest.mark.parametrize("alphabet,concentration", [(2, 1.0), (16, 0.3), (512, 0.05), (512, 5.0)])
def test_round_trip_and_rate(alphabet, concentration):
    rng = np.random.default_rng(alphabet)
    n = 20000
    probs = rng.dirichlet(np.full(alphabet, concentration), size=n).astype(np.float32)
    symbols = np.array([rng.choice(alphabet, p=p / p.sum(dtype=np.float64)) for p in probs], dtype=np.int32)
    enc = SymbolEncoder()
    for s in range(0, n, 1000):  # several calls, as the wavefront makes them
        enc.encode(symbols[s : s + 1000], probs[s : s + 1000])
    data = enc.to_bytes()
    dec = SymbolDecoder(data)
    out = np.concatenate([dec.decode(probs[s : s + 1000]) for s in range(0, n, 1000)])
    assert np.array_equal(out, symbols)
    p64 = probs.astype(np.float64)
    ideal = -np.log2(p64[np.arange(n), symbols] / p64.sum(1)).sum()
    assert 8 * len(data) <= 1.01 * ideal + 64


def test_odd_length_stream_is_rejected():
    with pytest.raises(FormatError):
        SymbolDecoder(b"\x00\x01\x02")


def test_streams_no_encoder_could_write_are_format_errors():
    """Random words under peaked rows: constriction rejects some as impossible (it asserts);
    that must surface as a FormatError, and nothing else may escape (found by bench/fuzz.py)."""
    rng = np.random.default_rng(0)
    rejected = 0
    for _ in range(600):
        data = rng.integers(0, 256, 4 * int(rng.integers(1, 4)), dtype=np.uint8).tobytes()
        try:
            SymbolDecoder(data).decode(rng.random((200, 512)).astype(np.float32) ** 16)
        except FormatError:
            rejected += 1
    assert rejected > 0
