import time
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from conftest import photo
from vqzip import codec, container, intake, runtime, zoo
from vqzip.errors import FormatError, ModelError
from vqzip.operating_point import OperatingPoint


@pytest.mark.parametrize("size", [(1, 1), (17, 33), (250, 131), (8, 8), (1, 40)])
def test_round_trip_sizes(tiny, size):
    im = photo(*size)
    data = codec.compress(im, tiny)
    out = codec.decompress(data).image
    assert out.size == im.size and out.mode == "RGB"


def test_decoded_symbols_are_the_coded_ones(tiny):
    pixels = np.asarray(photo(96, 64))
    codes = codec.encode_codes(tiny.net, pixels)
    _, _, decoded, _ = codec.decode_codes(codec.compress(Image.fromarray(pixels), tiny))
    assert len(decoded) == 2 and all(np.array_equal(a, b) for a, b in zip(decoded, codes))


def test_grayscale_comes_back_grayscale(tiny):
    out = codec.decompress(codec.compress(photo(40, 24, "L"), tiny))
    assert out.image.mode == "L" and out.header.mode == "L" and out.image.size == (40, 24)


def test_rate_matches_cross_entropy(tiny):
    im = photo(256, 192)
    data = codec.compress(im, tiny)
    ideal = sum(codec.estimated_bits(tiny, codec.decompress(data).codes).values())
    _, streams, _ = container.unpack(data)
    coded = 8 * sum(map(len, streams))
    assert coded <= 1.01 * ideal + 2 * 64  # each stream ends in at most two partly used words
    assert coded >= 0.99 * ideal


@pytest.mark.parametrize("enc_threads,dec_threads", [(1, 2), (2, 1), (4, 1)])
def test_exact_across_thread_counts(tiny, enc_threads, dec_threads):
    before = runtime.threads()
    try:
        runtime.set_threads(enc_threads)
        pixels = np.asarray(photo(120, 72, seed=3))
        data = codec.compress(Image.fromarray(pixels), tiny)
        codes = codec.encode_codes(tiny.net, pixels)  # the codes compress coded
        runtime.set_threads(dec_threads)
        _, _, decoded, _ = codec.decode_codes(data)
    finally:
        runtime.set_threads(before)
    assert all(np.array_equal(a, b) for a, b in zip(decoded, codes))


def test_file_from_another_model_names_it(tiny):
    data = bytearray(codec.compress(photo(16, 16), tiny))
    header, streams, _ = container.unpack(bytes(data))
    forged = container.pack(container.Header(header.width, header.height, header.mode, "other-model", b"\x01" * 8,
                                             header.maps, crcs=header.crcs), streams)
    with pytest.raises(ModelError, match="other-model"):
        codec.decompress(forged)


@pytest.mark.slow  # processes, or several codings at each thread count
def test_exact_across_processes(tiny_checkpoints, tmp_path):
    """Encoded in one process with 1 thread, decoded in another with 3: the same symbols."""
    import os
    import subprocess
    import sys

    script = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from conftest import photo
from vqzip import codec, runtime, zoo
runtime.set_threads(int(sys.argv[1]))
model = zoo.load("tiny")
pixels = np.asarray(photo(104, 80, seed=5))
codes = codec.encode_codes(model.net, pixels)
if sys.argv[2] == "encode":
    open(sys.argv[3], "wb").write(codec.compress(codec.Image.fromarray(pixels), model))
    np.savez(sys.argv[3] + ".npz", *codes)
else:
    _, _, decoded, _ = codec.decode_codes(open(sys.argv[3], "rb").read())
    ref = np.load(sys.argv[3] + ".npz")
    assert len(decoded) == len(ref.files) == 2
    assert all(np.array_equal(c, ref["arr_%d" % k]) for k, c in enumerate(decoded))
    print("exact")
""".format(tests=os.path.dirname(__file__))
    env = {**os.environ, "VQZIP_CHECKPOINTS": str(tiny_checkpoints)}
    path = str(tmp_path / "x.vqz")
    subprocess.run([sys.executable, "-c", script, "1", "encode", path], check=True, env=env)
    out = subprocess.run([sys.executable, "-c", script, "3", "decode", path], check=True, env=env,
                         capture_output=True, text=True)
    assert out.stdout.strip() == "exact"


@pytest.mark.parametrize("tile", [(64, 10**6), (64, 32)], ids=["stripes", "tiles"])
def test_tiles_join_without_seams(tiny, tile):
    """The VQ-VAE in 64-row stripes, or 64x32 tiles, gives the codes and pixels of one
    whole-image pass."""
    pixels = np.asarray(photo(72, 200, seed=7))
    whole = codec.encode_codes(tiny.net, pixels, tile=(10**6, 10**6))
    tiled = codec.encode_codes(tiny.net, pixels, tile=tile)
    assert all(np.array_equal(w, s) for w, s in zip(whole, tiled))
    a = codec.decode_pixels(tiny.net, whole, 72, 200, tile=(10**6, 10**6)).astype(int)
    b = codec.decode_pixels(tiny.net, whole, 72, 200, tile=tile).astype(int)
    assert np.abs(a - b).max() <= 1


def test_file_decodes_under_another_summation_order(tiny, monkeypatch):
    """A decoder whose matrix products sum in another order (as another CPU, BLAS or a GPU
    would) still decodes every symbol: the priors' arithmetic is exact."""
    from vqzip.priors import fixedpoint

    pixels = np.asarray(photo(88, 56, seed=4))
    data = codec.compress(Image.fromarray(pixels), tiny)
    codes = codec.encode_codes(tiny.net, pixels)
    monkeypatch.setattr(fixedpoint, "matmul", lambda x, wt: (x[:, ::-1].astype(np.float64) @ wt[::-1].astype(np.float64)).astype(np.float32))
    _, _, decoded, _ = codec.decode_codes(data)
    assert all(np.array_equal(a, b) for a, b in zip(decoded, codes))


@pytest.mark.parametrize("scale", [Fraction(1, 2), Fraction(5, 4)])
def test_scaled_levels_code_the_resampled_image_and_give_back_the_original_size(tiny, scale):
    im = photo(45, 30, seed=6)
    data = codec.compress(im, tiny, OperatingPoint(tiny.name, scale=scale))
    header, _, _ = container.unpack(data)
    coded = container.coded_size(45, 30, scale)
    assert header.scale == scale and list(header.maps) == codec.code_shapes(tiny.net, *coded)
    _, _, decoded, _ = codec.decode_codes(data)
    assert all(np.array_equal(a, b) for a, b in zip(
        decoded, codec.encode_codes(tiny.net, codec.resample(np.asarray(im), coded))))
    assert codec.decompress(data).image.size == (45, 30)


def noise(n: int) -> bytes:
    return np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("size,mode", [((96, 64), "RGB"), ((37, 21), "RGBA"), ((30, 17), "L")])
def test_preview_is_the_preview_map_through_the_head_at_a_quarter_size(tiny, size, mode):
    im = photo(*size, mode)
    data = codec.compress(im, tiny)
    out = codec.preview(data).image
    assert tiny.maps[0].preview == 4 and not any(m.preview for m in tiny.maps[1:])
    assert out.size == container.preview_size(*size, 4) == ((size[0] + 3) // 4, (size[1] + 3) // 4)
    assert out.mode == mode
    top = codec.encode_codes(tiny.net, intake.prepare(im).rgb)[0]
    expected = Image.fromarray(codec.preview_pixels(tiny.net, top, *size))
    if mode == "L":
        expected = expected.convert("L")
    assert np.array_equal(np.asarray(out)[..., :3] if mode == "RGBA" else np.asarray(out), np.asarray(expected))


def test_preview_never_reads_the_bottom_stream(tiny):
    """A bottom stream made garbage (file CRC recomputed) stops a full decode, not a preview."""
    data = codec.compress(photo(64, 48), tiny)
    header, streams, alpha = container.unpack(data)
    damaged = container.pack(header, [streams[0], noise(len(streams[1]))], alpha)
    assert codec.preview(damaged).image.size == (16, 12)
    with pytest.raises(FormatError, match="bottom codes fail their checksum"):
        codec.decompress(damaged)


def test_preview_checks_the_top_map(tiny):
    data = codec.compress(photo(64, 48), tiny)
    header, streams, alpha = container.unpack(data)
    damaged = container.pack(header, [noise(len(streams[0])), streams[1]], alpha)
    with pytest.raises(FormatError, match="top codes fail their checksum"):
        codec.preview(damaged)


THREE_MAPS = {"residual": {"bottom_stages": 2}, "fine": {"fine_stages": 1, "fine_codes": 24}}


@pytest.fixture(scope="module", params=sorted(THREE_MAPS))
def tiny_residual(tmp_path_factory, request):
    """A tiny model of three code maps, with replicate padding in its convolutions: two residual
    stages at the bottom level, or one bottom stage and a fine level at 1/2 resolution."""
    from conftest import TINY, tiny_model
    from vqzip import models

    net_cfg = {**TINY["net"], **THREE_MAPS[request.param], "padding": "replicate"}
    net = models.build("vqvae2", net_cfg)
    cfg = {**TINY, "net": net_cfg,
           "priors": [models.prior_config(net.maps, k, channels=16, first_kernel=3, blocks=2, cond_channels=8).to_dict()
                      for k in range(3)]}
    return zoo.load_folder(tiny_model(cfg, tmp_path_factory.mktemp("ckpt"), "tiny-residual"))


def test_residual_stages_round_trip(tiny_residual):
    """Three maps: the third map's prior sees the top map and the bottom one, at their strides
    over its own (the second bottom stage: x2 and x1; the fine level: x4 and x2)."""
    third = tiny_residual.maps[2]
    assert [m.name for m in tiny_residual.maps] == ["top", "bottom", third.name] and third.name in ("bottom.1", "fine")
    factors = (2, 1) if third.name == "bottom.1" else (4, 2)
    assert third.conds == (0, 1) and tiny_residual.priors[2].cfg.conds == tuple(zip((16, 32), factors))
    pixels = np.asarray(photo(72, 40, seed=8))
    data = codec.compress(Image.fromarray(pixels), tiny_residual)
    codes = codec.encode_codes(tiny_residual.net, pixels)
    _, _, decoded, _ = codec.decode_codes(data, tiny_residual)
    assert len(decoded) == 3 and all(np.array_equal(a, b) for a, b in zip(decoded, codes))
    assert codec.decompress(data, tiny_residual).image.size == (72, 40)


def test_a_file_may_code_fewer_stages(tiny_residual):
    """The maps a file holds are a prefix: dropping the last stage still decodes, to the
    network's reconstruction from the stages kept; dropping a whole level does not."""
    pixels = np.asarray(photo(40, 24, seed=9))
    data = codec.compress(Image.fromarray(pixels), tiny_residual)
    header, streams, alpha = container.unpack(data)
    # the colour offsets correct the decode of every stage, so a file cut to fewer drops them
    fewer = container.pack(replace(header, maps=header.maps[:2], crcs=header.crcs[:2], extensions=()),
                           streams[:2], alpha)
    codes = codec.encode_codes(tiny_residual.net, pixels)
    expected = codec.decode_pixels(tiny_residual.net, codes[:2], 40, 24)
    assert np.array_equal(np.asarray(codec.decompress(fewer, tiny_residual).image), expected)
    top_only = container.pack(replace(header, maps=header.maps[:1], crcs=header.crcs[:1]), streams[:1], alpha)
    with pytest.raises(FormatError, match="do not fit model"):
        codec.decompress(top_only, tiny_residual)


def test_fewer_maps_are_the_same_codes(tiny_residual):
    """Encoding only the first maps skips the levels after them, and changes nothing else."""
    pixels = np.asarray(photo(40, 24, seed=9))
    every = codec.encode_codes(tiny_residual.net, pixels)
    for n in (2, 3):
        assert all(np.array_equal(a, b) for a, b in zip(codec.encode_codes(tiny_residual.net, pixels, n), every[:n], strict=True))


def test_rdo_codes_decode_exactly_and_trade_distortion_for_rate(tiny_residual):
    """Codes chosen for rate and distortion, in the decoder's order under its probabilities,
    decode exactly (the CRCs hold), cost fewer bits as lambda grows, and move away from the
    nearest code; a vanishing lambda gives the nearest code everywhere."""
    im = photo(96, 64, seed=10)
    nearest = codec.encode_codes(tiny_residual.net, np.asarray(im))
    sizes, changed = [], []
    for lam in (1e-9, 0.05, 1.0):
        data = codec.compress(im, tiny_residual, OperatingPoint(tiny_residual.name, lam=lam))
        header = container.unpack(data)[0]
        assert header.lam == pytest.approx(lam) and len(header.maps) == 3
        decoded = codec.decompress(data, tiny_residual)
        sizes.append(len(data))
        changed.append(sum(int((a != b).sum()) for a, b in zip(decoded.codes, nearest)))
    assert changed[0] == 0 and changed[2] > 0
    assert sizes[2] < sizes[0]


def test_fewer_maps_code_fewer_maps(tiny_residual):
    im = photo(64, 48, seed=11)
    one, two = (codec.compress(im, tiny_residual, OperatingPoint(tiny_residual.name, maps=n)) for n in (2, 3))
    assert len(container.unpack(one)[0].maps) == 2 and len(container.unpack(two)[0].maps) == 3
    assert len(one) < len(two)
    with pytest.raises(ValueError, match="codes 2 to 3 maps, not 4"):
        codec.compress(im, tiny_residual, OperatingPoint(tiny_residual.name, maps=4))
    assert codec.compress(im, tiny_residual, OperatingPoint(tiny_residual.name)) == codec.compress(im, tiny_residual, None)


def test_a_point_of_another_model_is_refused(tiny, tiny_residual):
    with pytest.raises(ValueError, match="an operating point of model 'tiny' given to model 'tiny-residual'"):
        codec.compress(photo(16, 16), tiny_residual, OperatingPoint(tiny.name))


@pytest.mark.slow  # processes, or several codings at each thread count
def test_several_tiles_code_the_same_at_any_thread_count(tiny):
    """Above one tile (512 rows) the network's tiles run in parallel, one thread each:
    the same bytes and pixels at 1, 2 and 4 threads."""
    n = runtime.threads()
    try:
        got = []
        for threads in (1, 2, 4):
            runtime.set_threads(threads)
            data = codec.compress(photo(40, 1100, seed=3), tiny, OperatingPoint(tiny.name, lam=0.0))
            rdo = codec.compress(photo(40, 1100, seed=3), tiny, OperatingPoint(tiny.name, lam=0.02))
            got.append((data, rdo, np.asarray(codec.decompress(data).image).tobytes()))
        assert got[0] == got[1] == got[2]
    finally:
        runtime.set_threads(n)


@pytest.mark.slow  # codes twice over many tiles
def test_candidates_over_the_budget_run_one_tile_at_a_time_with_the_same_bytes(tiny, monkeypatch):
    """Many candidates held (rdo.CANDIDATE_BUDGET) send their tiles one at a time, not one per
    thread: less memory, the same file."""
    from vqzip import rdo, tiles

    n = runtime.threads()
    runtime.set_threads(2)
    calls = []  # (at_once, the most tiles that ran at once)
    per_tile = tiles.per_tile

    def counted(fn, parts, at_once=None):
        running, most = [0], [0]

        def run(t):
            running[0] += 1
            most[0] = max(most[0], running[0])
            time.sleep(0.01)  # long enough for two tiles to overlap when they may
            try:
                return fn(t)
            finally:
                running[0] -= 1
        out = per_tile(run, parts, at_once)
        calls.append((at_once, most[0]))
        return out

    monkeypatch.setattr(tiles, "per_tile", counted)
    try:
        im = photo(40, 1100, seed=3)  # 3 tiles
        within = codec.compress(im, tiny, OperatingPoint(tiny.name, lam=0.02))
        assert (None, 2) in calls and all(a is None for a, _ in calls)
        calls.clear()
        monkeypatch.setattr(rdo, "CANDIDATE_BUDGET", 0)
        assert codec.compress(im, tiny, OperatingPoint(tiny.name, lam=0.02)) == within
        assert (1, 1) in calls and all(most == 1 for a, most in calls if a == 1)
    finally:
        runtime.set_threads(n)


def test_one_stored_candidate_is_the_first_of_the_search_ties_included(tiny):
    """At λ = 0 the encoder keeps one candidate per position: the first of the same search, so
    of two codes at exactly the same distance it keeps the one eight candidates put first, the
    lower (`codebooks.least`; torch.topk ordered ties otherwise for k = 1 than for k = 8)."""
    import copy

    from vqzip import rdo, tiles
    from vqzip.inference.codebooks import Codebook, LatentCodebooks

    net = copy.copy(tiny.net)
    tied = [np.repeat(q.stages[0].embed[0::2], 2, 0) for q in tiny.net.quantizers]  # every code tied with its neighbour
    net.quantizers = [LatentCodebooks([Codebook(e)]) for e in tied]
    padded = codec.EdgePadded(np.asarray(photo(48, 40, seed=12)), net.STRIDE)
    parts = tiles.tiles(*padded.shape[:2])
    top_idx, top_dist = rdo.candidates(net, padded, 0, 0, [], parts)
    one_idx, one_dist = rdo.candidates(net, padded, 0, 0, [], parts, store=1)
    assert one_idx.shape[-1] == 1 and np.array_equal(one_idx, top_idx[..., :1]) and np.array_equal(one_dist, top_dist[..., :1])
    assert (top_dist[..., 0] == top_dist[..., 1]).all() and (top_idx[..., 0] % 2 == 0).all()  # the ties, the lower first
    chosen = [top_idx[..., 0].astype(np.int64)]
    assert np.array_equal(rdo.candidates(net, padded, 1, 0, chosen, parts, store=1)[0],
                          rdo.candidates(net, padded, 1, 0, chosen, parts)[0][..., :1])


def test_edge_padded_reads_regions_of_the_edge_padded_image():
    px = np.random.default_rng(0).integers(0, 256, (21, 30, 3), np.uint8)
    ref = np.pad(px, ((0, 3), (0, 2), (0, 0)), mode="edge")
    view = codec.EdgePadded(px, 8)
    assert view.shape == ref.shape
    for rows, cols in [(slice(0, 24), slice(0, 32)), (slice(5, 21), slice(3, 30)), (slice(16, 24), slice(24, 32)),
                       (slice(0, 8), slice(8, 32)), (slice(20, 24), slice(0, 8))]:
        assert np.array_equal(view[rows, cols], ref[rows, cols])


def _no_walk(model, monkeypatch):
    """Make any walk of model's priors fail the test: what is refused must be refused before it."""
    def walk(*args, **kwargs):
        raise AssertionError("a map was walked")

    for prior in model.priors:
        monkeypatch.setattr(prior, "walk", walk)


def test_a_forged_40_mp_file_with_empty_streams_is_refused_from_its_header(tiny, monkeypatch):
    import tracemalloc

    width, height = 7744, 5160
    header = container.Header(width, height, "RGB", tiny.name, tiny.hash8, tuple(codec.code_shapes(tiny.net, width, height)),
                              crcs=(0, 0))
    forged = container.pack(header, [b"", b""])
    assert len(forged) < 400
    _no_walk(tiny, monkeypatch)
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(FormatError, match="top map's stream of 0 bytes is shorter than its 645x968 codes"):
        codec.decompress(forged, tiny)
    assert time.perf_counter() - start < 1.0
    assert tracemalloc.get_traced_memory()[1] < 10 << 20
    tracemalloc.stop()


def test_every_stream_of_a_real_file_is_at_least_its_least_size(tiny):
    from vqzip.coder import min_stream_bytes

    data = codec.compress(photo(96, 64), tiny)
    header, streams, _ = container.unpack(data)
    for (rows, cols), stream, prior in zip(header.maps, streams, tiny.priors):
        assert 4 <= min_stream_bytes(rows * cols, prior.cfg.num_codes) <= len(stream)
    assert min_stream_bytes(10**9, 512) > 4 * 10**9 * 511 / 2**24 / np.log(2) / 32 - 12  # grows with the codes


@pytest.mark.parametrize("tag, value, message", [
    (container.TAG_CHROMA_GAIN, b"\xff\xff", "chroma gain ffff is not"),
    (container.TAG_COLOUR_OFFSETS, b"\x07" + bytes(8), "block side"),
    (container.TAG_FLAT_BLOCKS, b"\x09", "flat blocks' side"),
    (container.TAG_COLOUR_OFFSETS, b"\x04" + __import__("zlib").compress(bytes(10**7)), "colour offsets do not fit"),
    (container.TAG_FLAT_BLOCKS, b"\x04" + __import__("zlib").compress(bytes(6)) + b"more", "flat blocks do not fit"),
])
def test_extensions_are_checked_before_any_walk(tiny, monkeypatch, tag, value, message):
    data = codec.compress(photo(96, 64), tiny)
    header, streams, alpha = container.unpack(data)
    others = tuple((t, v) for t, v in header.extensions if t != tag)
    forged = container.pack(replace(header, extensions=others + ((tag, value),)), streams, alpha)
    _no_walk(tiny, monkeypatch)
    with pytest.raises(FormatError, match=message):
        codec.decompress(forged, tiny)
