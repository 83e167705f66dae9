"""The fine level skipped in blocks (`vqzip.fine_skip`): the block flags' coding, and files that
skip, coded and decoded through the codec with a tiny model of a fine level."""
from dataclasses import replace

import numpy as np
import pytest

from conftest import TINY, photo
from vqzip import codec, container, fine_skip, models, runtime, zoo
from vqzip.coder import SymbolDecoder, SymbolEncoder
from vqzip.errors import FormatError
from vqzip.operating_point import OperatingPoint


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (20, 33)])
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
def test_flags_decode_as_coded_and_the_stream_goes_on(shape, density):
    """Block flags, then other symbols in the same stream: both come back."""
    rng = np.random.default_rng(shape[0] * 100 + int(density * 10))
    keep = rng.random(shape) < density
    after = rng.integers(0, 9, 50)
    probs = rng.random((50, 9)).astype(np.float32) + 0.01
    enc = SymbolEncoder()
    fine_skip.encode(enc, keep)
    enc.encode(after, probs)
    dec = SymbolDecoder(enc.to_bytes())
    assert np.array_equal(fine_skip.decode(dec, *shape), keep)
    assert np.array_equal(dec.decode(probs), after)


def test_flags_in_runs_cost_little():
    """The contexts (the row above) learn runs: a mask of two halves costs well under a bit a block."""
    keep = np.zeros((40, 60), bool)
    keep[:, :30] = True
    enc = SymbolEncoder()
    fine_skip.encode(enc, keep)
    assert 8 * len(enc.to_bytes()) < 0.1 * keep.size


def test_blocks_and_positions():
    a = np.arange(35, dtype=np.float64).reshape(5, 7)
    sums = fine_skip.block_sums(a, 4)
    assert sums.shape == (2, 2) and sums.sum() == a.sum() and sums[0, 0] == a[:4, :4].sum()
    keep = fine_skip.keep_blocks(np.array([[10.0, 1.0]]), np.array([[2.0, 2.0]]), 3.0)
    assert keep.tolist() == [[True, False]]
    assert fine_skip.positions(keep, (3, 6), 4).tolist() == [[True] * 4 + [False] * 2] * 3
    assert fine_skip.blocks_of((9, 8)) == (3, 2)
    assert fine_skip.unpack(fine_skip.pack(250.0)) == (fine_skip.BLOCK, 250.0)
    with pytest.raises(ValueError, match="invalid fine-skip"):
        fine_skip.unpack(b"\0\0\0\0\0")


@pytest.fixture(scope="module")
def tiny_fine(tmp_path_factory):
    """A tiny model of three maps: top, bottom, and a fine level at 1/2 resolution."""
    from conftest import TINY, tiny_model
    from vqzip import models

    net_cfg = {**TINY["net"], "fine_stages": 1, "fine_codes": 24}
    net = models.build("vqvae2", net_cfg)
    cfg = {**TINY, "net": net_cfg,
           "priors": [models.prior_config(net.maps, k, channels=16, first_kernel=3, blocks=2, cond_channels=8).to_dict()
                      for k in range(3)]}
    return zoo.load_folder(tiny_model(cfg, tmp_path_factory.mktemp("ckpt"), "tiny-fine"))


def skipped_blocks(codes: np.ndarray, num_codes: int) -> np.ndarray:
    """Per block of the fine map: whether its positions hold OUT (all or none of them do)."""
    out = codes >= num_codes
    blocks = fine_skip.block_sums(out.astype(np.int64), fine_skip.BLOCK)
    sizes = fine_skip.block_sums(np.ones_like(out, np.int64), fine_skip.BLOCK)
    assert np.all((blocks == 0) | (blocks == sizes))
    return blocks > 0


@pytest.mark.parametrize("lam", [0.0, 0.05])
@pytest.mark.slow  # several codings each
def test_skipping_files_decode_exactly_and_skip_more_as_mu_grows(tiny_fine, lam):
    """Files that skip fine blocks decode (the maps' checksums hold) to code maps with OUT in
    whole blocks, to the network's decode of those maps; a larger mu skips more blocks and makes
    smaller files; a huge one skips every block, which decodes as two maps do."""
    im = photo(96, 72, seed=12)
    whole = codec.compress(im, tiny_fine, OperatingPoint(tiny_fine.name, lam=lam))
    skipped, sizes = [], []
    for mu in (1e-3, 30.0, 1e12):
        data = codec.compress(im, tiny_fine, OperatingPoint(tiny_fine.name, lam=lam, skip=mu))
        header = container.unpack(data)[0]
        assert fine_skip.unpack(dict(header.extensions)[container.TAG_FINE_SKIP]) == (fine_skip.BLOCK, np.float32(mu))
        decoded = codec.decompress(data, tiny_fine)
        blocks = skipped_blocks(decoded.codes[2], 24)
        skipped.append(blocks.mean())
        sizes.append(len(data))
        shown = codec.decode_pixels(tiny_fine.net, decoded.codes, 96, 72)
        _, streams, alpha = container.unpack(data)  # without the corrections of the decoded image:
        plain = replace(header, extensions=tuple((t, v) for t, v in header.extensions if t == container.TAG_FINE_SKIP))
        uncorrected = codec.decompress(container.pack(plain, streams, alpha), tiny_fine).image
        assert np.array_equal(np.asarray(uncorrected), shown)
    assert skipped[0] <= skipped[1] <= skipped[2] == 1.0 and 0 < skipped[1] < 1.0
    assert sizes[2] < sizes[1] < len(whole) + 64
    two_maps = codec.decode_pixels(tiny_fine.net, decoded.codes[:2], 96, 72)
    assert np.abs(shown.astype(int) - two_maps).max() <= 1  # zero fine vectors: the two-map decode, to float rounding


def test_skip_needs_a_coded_skippable_map(tiny_fine):
    """A file that says it skips blocks but codes no skippable map, or a damaged extension, is refused."""
    im = photo(48, 32, seed=13)
    # two maps: the skippable (fine) map is not coded, so nothing is skipped and there is no extension
    data = codec.compress(im, tiny_fine, OperatingPoint(tiny_fine.name, maps=2, skip=100.0))
    header, streams, alpha = container.unpack(data)
    assert container.TAG_FINE_SKIP not in dict(header.extensions)
    bad = container.pack(replace(header, extensions=((container.TAG_FINE_SKIP, fine_skip.pack(100.0)),)), streams, alpha)
    with pytest.raises(FormatError, match="codes no map that can be skipped"):
        codec.decompress(bad, tiny_fine)
    data = codec.compress(im, tiny_fine, OperatingPoint(tiny_fine.name, skip=100.0))
    header, streams, alpha = container.unpack(data)
    bad = container.pack(replace(header, extensions=((container.TAG_FINE_SKIP, b"\0" * 5),)), streams, alpha)
    with pytest.raises(FormatError, match="invalid fine-skip"):
        codec.decompress(bad, tiny_fine)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.slow  # several codings each
def test_skipping_files_decode_the_same_at_any_thread_count(tiny_fine, threads):
    data = codec.compress(photo(200, 136, seed=14), tiny_fine, OperatingPoint(tiny_fine.name, lam=0.05, skip=30.0))
    n = runtime.threads()
    runtime.set_threads(threads)
    try:
        got = codec.decompress(data, tiny_fine)
    finally:
        runtime.set_threads(n)
    ref = codec.decompress(data, tiny_fine)
    assert all(np.array_equal(a, b) for a, b in zip(got.codes, ref.codes))
    assert np.array_equal(np.asarray(got.image), np.asarray(ref.image))


def test_estimated_bits_leave_skipped_positions_out(tiny_fine):
    im = photo(96, 72, seed=12)
    decoded = codec.decompress(codec.compress(im, tiny_fine, OperatingPoint(tiny_fine.name, skip=1e12)), tiny_fine)
    assert codec.estimated_bits(tiny_fine, decoded.codes)["fine"] == 0.0


@pytest.mark.slow  # many codings to reach the target
def test_target_bpp_between_a_two_map_level_and_a_skipping_one_raises_the_threshold(tmp_path, monkeypatch):
    """Between a two-map level and a level that skips fine blocks, --target-bpp raises the
    upper level's threshold: the file lands within 5% under the target and records the skip
    it was made with."""
    from fractions import Fraction

    import vqzip
    from conftest import TINY, tiny_model
    from vqzip import models, training

    net_cfg = {**TINY["net"], "fine_stages": 1, "fine_codes": 24}
    net = models.build("vqvae2", net_cfg)
    cfg = {**TINY, "net": net_cfg,
           "priors": [models.prior_config(net.maps, k, channels=16, first_kernel=3, blocks=2, cond_channels=8).to_dict()
                      for k in range(3)]}
    tiny_model(cfg, tmp_path, "tiny-fine")
    training.register(tmp_path, "tiny-fine", [Fraction(1)], default_scale=Fraction(1))
    training.set_ladder(tmp_path, {"1": {"model": "tiny-fine", "scale": "1", "maps": 2},
                                   "2": {"model": "tiny-fine", "scale": "1", "maps": 3, "skip": 1.0}}, 1)
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(tmp_path))
    im = photo(160, 96, seed=2)
    n = 160 * 96
    low, high = (8 * len(vqzip.compress(im, q)) / n for q in (1, 2))
    assert low < high
    target = low + 0.5 * (high - low)
    choice = vqzip.compress_to_target(im, bpp=target)
    assert choice.met and 0.95 * target <= choice.bpp <= target
    assert choice.quality == 2 and choice.point.skip > 1.0 and choice.point.scale == 1
    header = container.unpack(choice.data)[0]
    assert fine_skip.unpack(dict(header.extensions)[container.TAG_FINE_SKIP])[1] == pytest.approx(choice.point.skip)


def test_info_says_the_fine_level_is_skipped(capsys):
    """`vqzip info` names the threshold a skipping file was made with (a shipped golden file)."""
    from pathlib import Path

    from vqzip.cli import main

    golden = Path(__file__).parent / "golden" / "v4-l3-tiger-crop-skip.vqz"
    assert main(["info", str(golden)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "fine level skipped where it saves under" in out and "300 per bit" in out


def test_which_map_skips_is_the_architecture_s_role_not_a_name(tiny, tiny_fine):
    """Only a fine latent of one stage is skippable (skipped positions zero every stage's
    vectors); a point that skips with a model that has no skippable map is refused."""
    assert [m.skippable for m in tiny_fine.maps] == [False, False, True]
    two = models.build("vqvae2", {**TINY["net"], "fine_stages": 2, "fine_codes": 24})
    assert not any(m.skippable for m in two.maps) and [m.latent for m in two.maps] == [0, 1, 2, 2]
    with pytest.raises(ValueError, match="no map that can be skipped"):
        codec.compress(photo(16, 16), tiny, OperatingPoint(tiny.name, skip=1.0))
