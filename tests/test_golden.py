"""Golden files: .vqz files made by shipped models (tests/golden/, with a version-3 file of vqzip
0.2), decoded by the shipped models to code maps and pixels of known sha256. A change to the
format, the priors' arithmetic, the decode order or the decoder that breaks decoding of files
people already have fails here. (The code maps are exact on any machine; the pixel hashes are of
this machine's float VQ-VAE decoder.)"""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from vqzip import codec, container

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = json.loads((GOLDEN / "golden.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_file_decodes_to_the_same_codes_and_pixels(name):
    data = (GOLDEN / name).read_bytes()
    expected = EXPECTED[name]
    assert data[4] == (3 if name.startswith("v3") else container.VERSION)
    decoded = codec.decompress(data)
    assert [decoded.image.width, decoded.image.height] == expected["size"] and decoded.image.mode == expected["mode"]
    assert [hashlib.sha256(c.astype("<u2").tobytes()).hexdigest() for c in decoded.codes] == expected["codes_sha256"]
    assert hashlib.sha256(np.asarray(decoded.image).tobytes()).hexdigest() == expected["pixels_sha256"]


def test_every_golden_file_is_listed():
    assert sorted(p.name for p in GOLDEN.glob("*.vqz")) == sorted(EXPECTED)


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.slow  # decodes at each thread count
def test_pixels_do_not_depend_on_the_thread_count(threads):
    """The README's promise: a file decodes to the same pixels at any number of threads (the
    tiger file's pixels differed at 1 and 2 threads before the network ran one thread per stripe);
    with vqz-l3's three maps, walked in bands, too."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for name in ("v3-tiger-q1.vqz", "v4-tiger-crop-rdo.vqz", "v4-l3-tiger-crop-top.vqz", "v4-l3-tiger-crop-skip.vqz"):
            image = codec.decompress((GOLDEN / name).read_bytes()).image
            assert hashlib.sha256(np.asarray(image).tobytes()).hexdigest() == EXPECTED[name]["pixels_sha256"]
    finally:
        torch.set_num_threads(n)
