from dataclasses import replace
from fractions import Fraction

import pytest

from vqzip import container
from vqzip.container import Header, pack, unpack
from vqzip.errors import FormatError

HEADER = Header(width=250, height=131, mode="RGB", model_name="vqz-base", model_hash=bytes(range(8)),
                maps=((17, 32), (34, 64)), scale=Fraction(5, 8), crcs=(0x1234ABCD, 0xFEDC5678), quality=5,
                lam=0.25, extensions=((130, b"later"), (200, b"")))
PAYLOADS = [b"\x01\x02\x03\x04", b"\xff" * 40]


def test_round_trip_every_field():
    header, payloads, _ = unpack(pack(HEADER, PAYLOADS))
    assert header == HEADER
    assert (header.width, header.height, header.mode) == (250, 131, "RGB")
    assert header.model_name == "vqz-base" and header.model_hash == bytes(range(8))
    assert header.maps == ((17, 32), (34, 64)) and header.scale == Fraction(5, 8)
    assert header.crcs == (0x1234ABCD, 0xFEDC5678)
    assert (header.quality, header.lam, header.extensions) == (5, 0.25, ((130, b"later"), (200, b"")))
    assert header.coded_size == (156, 82)  # 250 * 5/8 = 156.25, 131 * 5/8 = 81.875
    assert payloads == PAYLOADS


@pytest.mark.parametrize("size,scale,coded", [((1, 1), Fraction(1, 2), (1, 1)), ((3, 5), Fraction(1, 2), (2, 3)),
                                              ((768, 512), Fraction(5, 4), (960, 640)), ((7, 9), Fraction(1), (7, 9))])
def test_coded_size_rounds_half_up_and_keeps_a_pixel(size, scale, coded):
    assert container.coded_size(*size, scale) == coded


def test_layout_starts_with_magic_and_version():
    data = pack(HEADER, PAYLOADS)
    assert data[:4] == container.MAGIC and data[4] == container.VERSION
    ext = 3 + 5 + 3
    assert len(data) == 4 + 1 + 1 + 4 + 4 + 2 + 5 + 1 + 8 + 8 + 1 + 2 * 12 + 4 + 2 + ext + 44 + 4


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_modes(mode):
    h = Header(1, 1, mode, "m", bytes(8), ((1, 1), (2, 2)), crcs=(0, 0))
    assert unpack(pack(h, [b"", b""]))[0].mode == mode


def test_any_single_bit_flip_is_caught():
    data = pack(HEADER, PAYLOADS)
    for byte in range(len(data)):
        for bit in (0, 7):
            bad = bytearray(data)
            bad[byte] ^= 1 << bit
            with pytest.raises(FormatError):
                unpack(bytes(bad))


def test_every_truncation_is_caught():
    data = pack(HEADER, PAYLOADS)
    for n in range(len(data)):
        with pytest.raises(FormatError):
            unpack(data[:n])


def test_messages_name_the_problem():
    data = pack(HEADER, PAYLOADS)
    with pytest.raises(FormatError, match="magic"):
        unpack(b"\x89PNG\r\n\x1a\n" + data[8:])
    with pytest.raises(FormatError, match="version 7"):
        unpack(data[:4] + b"\x07" + data[5:])
    with pytest.raises(FormatError, match="checksum"):
        unpack(data[:-1] + bytes([data[-1] ^ 1]))


def test_version_3_files_still_read(tmp_path):
    """vqzip 0.2 wrote version 3: no operating point, no extensions (golden file from 0.2)."""
    from pathlib import Path

    data = (Path(__file__).parent / "golden" / "v3-tiger-q1.vqz").read_bytes()
    header, payloads, alpha = unpack(data)
    assert data[4] == 3 and (header.quality, header.lam, header.extensions) == (0, 0.0, ())
    assert (header.width, header.height, header.model_name, len(payloads), alpha) == (481, 321, "vqz-base", 2, b"")


def test_an_unknown_extension_that_changes_decoding_is_refused_an_informative_one_skipped():
    from vqzip.container import FIRST_SKIPPABLE_TAG, Header, pack, unpack

    header = Header(8, 8, "RGB", "m", b"\0" * 8, ((1, 1),), crcs=(0,))
    kept = unpack(pack(replace(header, extensions=((FIRST_SKIPPABLE_TAG + 5, b"note"),)), [b"x"]))[0]
    assert kept.extensions == ((FIRST_SKIPPABLE_TAG + 5, b"note"),)
    with pytest.raises(FormatError, match="extension 9, which this vqzip does not know"):
        unpack(pack(replace(header, extensions=((9, b"?"),)), [b"x"]))
