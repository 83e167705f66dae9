"""Golden files: .vqz files made by shipped models (tests/golden/, with a version-3 file of vqzip
0.2), decoded by the shipped models to code maps and pixels of known sha256. A change to the
format, the priors' arithmetic, the decode order or the decoder that breaks decoding of files
people already have fails here. (The code maps are exact on any machine; the pixel hashes are of
this machine's float VQ-VAE decoder, per backend: `pixels_sha256` of the torch backend,
`pixels_sha256_onnx` of ONNX Runtime's, which differ by one level on a few pixels: 8 of 463,203
values of the tiger file, 1 of 18,432 and of 46,080 of two crops, none in the other eight files.
Decoding code maps never runs the network, so they are the same on either backend by
construction; whether the backends' encoders write the same files is tests/test_inference.py's
`test_onnx_and_torch_encode_the_same_files`.)"""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from vqzip import codec, container, runtime, zoo

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = json.loads((GOLDEN / "golden.json").read_text())


PIXELS = {"onnx": "pixels_sha256_onnx", "torch": "pixels_sha256"}


@pytest.mark.parametrize("backend", ["onnx", pytest.param("torch", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_file_decodes_to_the_same_codes_and_pixels(name, backend):
    data = (GOLDEN / name).read_bytes()
    expected = EXPECTED[name]
    assert data[4] == (3 if name.startswith("v3") else container.VERSION)
    decoded = codec.decompress(data, zoo.load_for_hash(container.unpack(data)[0].model_hash, backend))
    assert [decoded.image.width, decoded.image.height] == expected["size"] and decoded.image.mode == expected["mode"]
    assert [hashlib.sha256(c.astype("<u2").tobytes()).hexdigest() for c in decoded.codes] == expected["codes_sha256"]
    assert hashlib.sha256(np.asarray(decoded.image).tobytes()).hexdigest() == expected[PIXELS[backend]]


def test_every_golden_file_is_listed():
    assert sorted(p.name for p in GOLDEN.glob("*.vqz")) == sorted(EXPECTED)


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.slow  # decodes at each thread count
def test_pixels_do_not_depend_on_the_thread_count(threads):
    """The README's promise: a file decodes to the same pixels at any number of threads (the
    tiger file's pixels differed at 1 and 2 threads before the network ran one thread per stripe);
    with vqz-l3's three maps, walked in bands, too."""
    n = runtime.threads()
    runtime.set_threads(threads)
    try:
        for name in ("v3-tiger-q1.vqz", "v4-tiger-crop-rdo.vqz", "v4-l3-tiger-crop-top.vqz", "v4-l3-tiger-crop-skip.vqz"):
            image = codec.decompress((GOLDEN / name).read_bytes()).image
            assert hashlib.sha256(np.asarray(image).tobytes()).hexdigest() == EXPECTED[name]["pixels_sha256_onnx"]
    finally:
        runtime.set_threads(n)
