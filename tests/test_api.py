"""The library API and the Pillow plugin."""
import os

import numpy as np
import pytest
from PIL import Image

import vqzip
from conftest import photo
from vqzip import codec, zoo
from vqzip.codec import preview


def test_compress_decompress_round_trip(tiny):
    im = photo(40, 24)
    data = vqzip.compress(im)
    out = vqzip.decompress(data)
    assert isinstance(data, bytes) and out.size == (40, 24) and out.mode == "RGB"
    assert len(vqzip.compress(im, quality=1)) < len(data)  # level 1 codes at half the scale


def test_the_model_is_loaded_once(tiny):
    assert zoo.load("tiny") is zoo.load("tiny")


def test_file_helpers_keep_inputs_and_refuse_overwrites(tiny, tmp_path):
    photo(30, 20).save(tmp_path / "a.png")
    vqz = vqzip.compress_file(tmp_path / "a.png")
    assert vqz == tmp_path / "a.vqz" and (tmp_path / "a.png").exists()
    with pytest.raises(vqzip.VqzError, match="already exists"):
        vqzip.compress_file(tmp_path / "a.png")
    out = vqzip.decompress_file(vqz, tmp_path / "b.webp")
    with Image.open(out) as im:
        assert im.format == "WEBP" and im.size == (30, 20)


@pytest.mark.parametrize("target", [{"bpp": 1e9}, {"bpp": 1e-9}, {"psnr": 0.0}, {"psnr": 1e9}])
def test_targets_pick_the_level_by_measurement(tiny, target):
    im = photo(48, 32)
    choice = vqzip.compress_to_target(im, **target)
    sizes = {lv.quality: len(vqzip.compress(im, lv.quality)) for lv in vqzip.levels()}
    assert choice.data == vqzip.compress(im, choice.quality)
    if "bpp" in target:  # the highest level within the rate; else the lowest, flagged
        within = [q for q, n in sizes.items() if 8 * n / (48 * 32) <= target["bpp"]]
        assert choice.quality == (max(within) if within else min(sizes)) and choice.met == bool(within)
    else:  # the lowest level reaching the PSNR; else the highest, flagged
        assert choice.quality == (min(sizes) if target["psnr"] == 0 else max(sizes))
        assert choice.met == (target["psnr"] == 0) and choice.psnr is not None


def test_pillow_opens_and_saves_vqz(tiny, tmp_path):
    im = photo(36, 28, "RGBA")
    im.save(tmp_path / "p.vqz", quality=2)
    with Image.open(tmp_path / "p.vqz") as back:
        assert back.format == "VQZ" and back.size == (36, 28) and back.mode == "RGBA"
        pixels = np.asarray(back)
    assert np.array_equal(pixels, np.asarray(vqzip.decompress(tmp_path / "p.vqz")))
    assert np.array_equal(pixels[..., 3], np.asarray(im)[..., 3])  # alpha lossless
    assert Image.registered_extensions()[".vqz"] == "VQZ"


def test_multi_frame_file_by_path(tiny, tmp_path):
    """The file stays open while coding: its first frame can be sought."""
    frames = [photo(18, 14, seed=s).convert("P") for s in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    with pytest.warns(vqzip.VqzWarning, match="3 frames"):
        data = vqzip.compress(tmp_path / "a.gif")
    assert vqzip.decompress(data).size == (18, 14)


def test_preview_through_the_api_and_the_file_helper(tiny, tmp_path):
    photo(50, 30).save(tmp_path / "a.png")
    vqz = vqzip.compress_file(tmp_path / "a.png")
    assert vqzip.decompress(vqz, preview=True).size == (13, 8)
    out = vqzip.decompress_file(vqz, preview=True)
    assert out == tmp_path / "a.preview.png"  # never taken for the full image
    with Image.open(out) as im:
        assert im.size == (13, 8)


def test_pillow_draft_and_thumbnail_use_the_preview(tiny, tmp_path, monkeypatch):
    photo(80, 48).save(tmp_path / "p.vqz")
    with Image.open(tmp_path / "p.vqz") as im:
        assert im.draft("RGB", (40, 24)) is None  # larger than the preview: the full decode
        assert im.draft("RGB", (20, 12)) == ("RGB", (0, 0, 20.0, 12.0))
        assert im.size == (20, 12)
        assert np.array_equal(np.asarray(im), np.asarray(vqzip.decompress(tmp_path / "p.vqz", preview=True)))
    previews = []
    monkeypatch.setattr(codec, "preview", lambda data, **k: previews.append(1) or preview(data, **k))
    with Image.open(tmp_path / "p.vqz") as im:
        im.thumbnail((10, 6))  # asks draft() for (20, 12): the preview
        assert im.size == (10, 6) and previews == [1]
    with Image.open(tmp_path / "p.vqz") as im:
        im.load()
        assert im.draft("RGB", (20, 12)) is None and im.size == (80, 48)  # loaded: too late


@pytest.mark.slow  # many codings to reach the target
def test_target_bpp_lands_just_under_between_levels(tiny):
    """Between two levels, the target is met within 5% under it: by the upper level's RDO
    multiplier when that reaches, else by a scale between the levels'; the file records what
    was used."""
    from fractions import Fraction

    from vqzip import container

    im = photo(160, 96, seed=2)
    n = 160 * 96
    low, high = (8 * len(vqzip.compress(im, q)) / n for q in (1, 2))
    for target in (0.98 * high, low + 0.5 * (high - low)):
        choice = vqzip.compress_to_target(im, bpp=target)
        assert choice.met and 0.95 * target <= choice.bpp <= target
        header = container.unpack(choice.data)[0]
        assert header.lam == pytest.approx(choice.point.lam) and header.scale == choice.point.scale
    assert choice.point.lam == 0 and Fraction(1, 2) < choice.point.scale < 1  # the halfway target: lambda alone cannot reach it


def test_a_bpp_target_counts_the_metadata_the_file_keeps(tiny):
    """An image's metadata goes into its file: a bpp target is met by the whole file, not by the
    coded image alone (a large EXIF or XMP made --strict pass a file several times the target)."""
    im = photo(160, 96, seed=2)
    n = 160 * 96
    low, high = (8 * len(vqzip.compress(im, q)) / n for q in (1, 2))
    target = low + 0.5 * (high - low)
    im.info["xmp"] = bytes(range(7, 256, 2))  # 125 bytes that zlib cannot shrink much: about 0.07 bpp here
    choice = vqzip.compress_to_target(im, bpp=target)
    assert choice.bpp == 8 * len(choice.data) / n and choice.met and 0.95 * target <= choice.bpp <= target
    over = vqzip.compress_to_target(im, bpp=low)  # the lowest level's rate: with the metadata nothing meets it
    assert over.bpp == 8 * len(over.data) / n > low and not over.met
    assert vqzip.decompress(choice.data).info["xmp"] == im.info["xmp"]


def test_the_api_raises_only_vqz_errors_naming_the_input(tiny, tmp_path):
    import io

    from vqzip import VqzError

    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    photo(40, 30).save(tmp_path / "whole.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:200])
    for path, message in (("text.png", "not an image format Pillow reads"), ("empty.png", "empty input, not an image"),
                          ("cut.png", "cannot read the image")):
        with pytest.raises(VqzError, match=f"{path}: {message}"):
            vqzip.compress(tmp_path / path)
    with pytest.raises(VqzError, match="image: empty input"):
        vqzip.compress(io.BytesIO(b""))


def test_an_output_suffix_no_format_has_is_refused_before_decoding(tiny, tmp_path, monkeypatch):
    from vqzip import api

    photo(30, 20).save(tmp_path / "a.png")
    vqz = vqzip.compress_file(tmp_path / "a.png")
    monkeypatch.setattr(api, "decompress", lambda *a, **k: pytest.fail("decoded before refusing"))
    for name, message in (("b.xyz", "the suffix .xyz names no image format Pillow writes"),
                          ("b", "no suffix to choose a format by"), ("b.psd", "Pillow reads PSD but cannot write it")):
        with pytest.raises(vqzip.VqzError, match=f"{name}: {message}"):
            vqzip.decompress_file(vqz, tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a.vqz"]


def test_re_encoding_a_vqz_warns(tiny, tmp_path):
    photo(30, 20).save(tmp_path / "a.png")
    vqz = vqzip.compress_file(tmp_path / "a.png")
    with pytest.warns(vqzip.VqzWarning, match="the image is a .vqz file: coding its decoded pixels again"):
        vqzip.compress(vqz)
    with pytest.warns(vqzip.VqzWarning, match="the image is a .vqz file"), Image.open(vqz) as im:
        vqzip.compress_to_target(im, bpp=10)
    with pytest.warns(vqzip.VqzWarning, match="b.vqz: writing .vqz codes the decoded image again"):
        vqzip.decompress_file(vqz, tmp_path / "b.vqz")
    assert (tmp_path / "b.vqz").read_bytes()[:4] == b"\x89VQZ"


def _gif_cut_in_its_second_frame(path):
    """A GIF whose first frame reads and whose second is cut short: Pillow raised IndexError
    when coding counted its frames."""
    import io

    frames = [photo(18, 14, seed=s).convert("P") for s in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    path.write_bytes(buf.getvalue()[:2 * len(buf.getvalue()) // 3])


def test_the_api_raises_only_vqz_errors_for_files_names_and_pillow(tiny, tmp_path, monkeypatch):
    tiny_root = os.environ["VQZIP_CHECKPOINTS"]
    import io
    import pathlib

    from vqzip import VqzError

    photo(30, 20).save(tmp_path / "a.png")
    vqz = vqzip.compress_file(tmp_path / "a.png")
    long = str(tmp_path / ("x" * 300))  # longer than a file name may be: OSError from exists()
    for call in (lambda: vqzip.compress(long + ".png"), lambda: vqzip.decompress(long + ".vqz"),
                 lambda: vqzip.compress_file(tmp_path / "a.png", long + ".vqz"),
                 lambda: vqzip.decompress_file(vqz, long + ".png")):
        with pytest.raises(VqzError, match="File name too long"):
            call()
    # a name that fits is written, its temporary file's name cut to fit too
    vqzip.compress_file(tmp_path / "a.png", tmp_path / ("y" * 250 + ".vqz")).unlink()
    with pytest.raises(VqzError, match="nothere/b.png: folder"):
        vqzip.decompress_file(vqz, tmp_path / "nothere" / "b.png")
    _gif_cut_in_its_second_frame(tmp_path / "cut.gif")
    with pytest.raises(VqzError, match="cut.gif: cannot read the image"):
        vqzip.compress(tmp_path / "cut.gif")
    with pytest.raises(VqzError, match="image: cannot read the image"), Image.open(tmp_path / "cut.gif") as im:
        vqzip.compress(im)  # given opened: the same
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow's DecompressionBombError, at 2x its limit
    with pytest.raises(VqzError, match="a.png: Image size .* exceeds limit"):
        vqzip.compress(tmp_path / "a.png")
    monkeypatch.undo()
    real = pathlib.Path.read_bytes
    monkeypatch.setattr(pathlib.Path, "read_bytes",
                        lambda p: (_ for _ in ()).throw(OSError(5, "Input/output error")) if p == vqz else real(p))
    with pytest.raises(VqzError, match="a.vqz: Input/output error"):
        vqzip.decompress(vqz)
    monkeypatch.undo()
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(tiny_root))  # undo() took the tiny model's too
    # the Pillow plugin: damaged headers, forged payloads, bad save options
    data = vqz.read_bytes()
    with pytest.raises(vqzip.FormatError, match="checksum"):
        Image.open(io.BytesIO(data[:-1] + bytes([data[-1] ^ 1])))
    import struct
    import zlib

    forged = bytearray(data)
    forged[len(data) - 8] ^= 0x55  # in the last code map's stream
    forged[-4:] = struct.pack("<I", zlib.crc32(bytes(forged[:-4])))
    with pytest.raises(vqzip.FormatError), Image.open(io.BytesIO(bytes(forged))) as im:
        im.load()
    with pytest.raises(vqzip.ModelError, match="no quality level 9"):
        photo(16, 16).save(io.BytesIO(), "VQZ", quality=9)
    with pytest.raises(VqzError, match="floating-point"):
        Image.new("F", (8, 8)).save(io.BytesIO(), "VQZ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a.vqz", "cut.gif"]  # nothing left behind


@pytest.mark.parametrize("suffix, width, limit", [(".gif", 70000, "65,535"), (".tga", 70000, "65,535"),
                                                  (".sgi", 70000, "65,535"), (".webp", 16384, "16,383"),
                                                  (".jpg", 65501, "65,500")])
def test_an_output_format_too_small_for_the_image_is_refused_before_decoding(tiny, tmp_path, monkeypatch, suffix, width,
                                                                            limit):
    from vqzip import api, container

    shapes = tuple(codec.code_shapes(tiny.net, width, 8))
    forged = container.pack(container.Header(width, 8, "RGB", tiny.name, tiny.hash8, shapes, crcs=(0, 0)),
                            [bytes(4), bytes(4)])
    (tmp_path / "wide.vqz").write_bytes(forged)
    monkeypatch.setattr(api, "decompress", lambda *a, **k: pytest.fail("decoded before refusing"))
    with pytest.raises(vqzip.VqzError, match=f"holds images of at most {limit} pixels a side, not {width}x8"):
        vqzip.decompress_file(tmp_path / "wide.vqz", tmp_path / f"out{suffix}")
    with pytest.raises(vqzip.VqzError, match=f"at most {limit} pixels a side"):
        api.encode_image(Image.new("RGB", (width, 1)), suffix, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.vqz"]


def test_a_writer_failure_of_any_kind_is_one_vqz_error(monkeypatch):
    import struct

    from vqzip import api

    def save(self, fp, format=None, **params):
        raise struct.error("'H' format requires 0 <= number <= 65535")

    monkeypatch.setattr(Image.Image, "save", save)
    with pytest.raises(vqzip.VqzError, match=r"x.sgi: SGI cannot hold this RGB image \(error: 'H' format"):
        api.encode_image(Image.new("RGB", (8, 8)), ".sgi", "x.sgi")
