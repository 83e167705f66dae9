"""A photo's EXIF, ICC profile and XMP through a .vqz (`vqzip.metadata`)."""
from dataclasses import replace

import pytest
from PIL import Image, ImageCms

import vqzip
from conftest import photo
from vqzip import codec, container, metadata, zoo
from vqzip.cli import main
from vqzip.errors import FormatError

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def _camera_jpeg(path, icc=SRGB):
    exif = Image.Exif()
    exif[metadata.ORIENTATION] = 6  # stored sideways: shown turned a quarter clockwise
    exif[0x010F] = "Camera maker"
    photo(48, 32).save(path, "JPEG", quality=95, exif=exif.tobytes(), icc_profile=icc, xmp=XMP)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_a_photo_keeps_its_orientation_icc_and_xmp(tiny, tmp_path, capsys, suffix):
    _camera_jpeg(tmp_path / "cam.jpg")
    assert main(["compress", str(tmp_path / "cam.jpg")]) == 0
    assert main(["decompress", str(tmp_path / "cam.vqz"), "-o", str(tmp_path / f"out{suffix}")]) == 0
    with Image.open(tmp_path / f"out{suffix}") as out:
        assert out.size == (32, 48)  # upright
        exif = out.getexif()
        assert exif.get(metadata.ORIENTATION, 1) == 1 and exif[0x010F] == "Camera maker"  # not turned twice
        assert out.info["icc_profile"] == SRGB
        xmp = out.info.get("xmp") or out.info.get("XML:com.adobe.xmp")
        if suffix != ".tif":  # Pillow's TIFF writer takes XMP only without EXIF (`metadata.save_params`)
            assert (xmp.encode() if isinstance(xmp, str) else xmp) == XMP
    assert "warning" not in capsys.readouterr().err  # an sRGB profile goes without a word


def test_strip_drops_them_and_an_image_without_them_codes_the_bytes_it_always_did(tiny, tmp_path):
    _camera_jpeg(tmp_path / "cam.jpg")
    assert main(["compress", "--strip", str(tmp_path / "cam.jpg")]) == 0
    header = container.unpack((tmp_path / "cam.vqz").read_bytes())[0]
    assert container.TAG_METADATA not in dict(header.extensions)
    with Image.open(tmp_path / "cam.jpg") as im:
        kept = vqzip.compress(im)
        assert len(kept) > len((tmp_path / "cam.vqz").read_bytes())
        out = vqzip.decompress(kept, strip=True)
        assert not {"exif", "icc_profile", "xmp"} & set(out.info)
    plain = photo(40, 24)
    assert vqzip.compress(plain) == codec.compress(plain, zoo.load("tiny"), zoo.level(None).point, quality=zoo.level(None).quality)


def test_a_profile_other_than_srgb_is_kept_and_said(tiny, tmp_path):
    other = ImageCms.ImageCmsProfile(ImageCms.createProfile("XYZ")).tobytes()
    im = photo(32, 24)
    im.info["icc_profile"] = other
    with pytest.warns(vqzip.VqzWarning, match="ICC profile .* \\(not sRGB\\) kept"):
        data = vqzip.compress(im)
    assert vqzip.decompress(data).info["icc_profile"] == other


def test_a_damaged_metadata_extension_is_refused_before_decoding(tiny, monkeypatch):
    import zlib

    data = vqzip.compress(photo(32, 24))
    header, streams, alpha = container.unpack(data)
    for value in (b"junk", zlib.compress(bytes(17 << 20)), zlib.compress(b"\x07\0\0\0\0")):
        forged = container.pack(replace(header, extensions=((container.TAG_METADATA, value),)),
                                streams, alpha)
        monkeypatch.setattr(codec, "decompress", lambda *a, **k: pytest.fail("decoded"))
        with pytest.raises(FormatError, match="invalid metadata extension"):
            vqzip.decompress(forged)


def test_lossy_outputs_take_output_quality(tiny, tmp_path):
    photo(48, 32).save(tmp_path / "a.png")
    assert main(["compress", "-q", str(tmp_path / "a.png")]) == 0
    sizes = {}
    for q in ("95", "30"):
        assert main(["decompress", "-q", str(tmp_path / "a.vqz"), "-o", str(tmp_path / f"a{q}.jpg"), "--output-quality", q]) == 0
        sizes[q] = (tmp_path / f"a{q}.jpg").stat().st_size
    assert main(["decompress", "-q", str(tmp_path / "a.vqz"), "-o", str(tmp_path / "d.jpg")]) == 0
    assert (tmp_path / "d.jpg").read_bytes() == (tmp_path / "a95.jpg").read_bytes() and sizes["30"] < sizes["95"]


def test_a_photo_with_damaged_exif_still_codes_without_it(tiny, tmp_path, capsys):
    """EXIF that Pillow's parser refuses (Pillow still opens the JPEG) is left out with a warning,
    as it was ignored before metadata was kept: the photo codes, the rest of its metadata kept."""
    photo(16, 16).save(tmp_path / "bad.jpg", "JPEG", exif=b"Exif\x00\x00garbage!", icc_profile=SRGB)
    assert main(["compress", str(tmp_path / "bad.jpg")]) == 0
    assert "EXIF is damaged" in capsys.readouterr().err
    out = vqzip.decompress(tmp_path / "bad.vqz")
    assert "exif" not in out.info and out.info["icc_profile"] == SRGB
