import shutil

import pytest

from conftest import photo
from vqzip.cli import main


@pytest.fixture()
def workdir(tmp_path, tiny):
    photo(48, 40).save(tmp_path / "img.png")
    return tmp_path


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_compress_decompress_info(workdir, capsys):
    assert main(["compress", str(workdir / "img.png")]) == 0
    assert (workdir / "img.vqz").stat().st_size > 0
    assert "bpp" in capsys.readouterr().err
    assert main(["decompress", str(workdir / "img.vqz"), "-o", str(workdir / "out.png")]) == 0
    from PIL import Image

    assert Image.open(workdir / "out.png").size == (48, 40)
    assert main(["info", str(workdir / "img.vqz")]) == 0
    out = capsys.readouterr().out
    assert "48 x 40" in out and "tiny" in out and "quality 2" in out and "nearest codes" in out
    assert "map 0 (top)" in out and "6 x 5 codes" in out and "12 x 10 codes" in out  # W x H, as the size
    assert leftovers(workdir) == []


def test_outputs_get_the_umask_permissions(workdir):
    import os

    old = os.umask(0o022)
    try:
        assert main(["compress", str(workdir / "img.png")]) == 0
    finally:
        os.umask(old)
    assert (workdir / "img.vqz").stat().st_mode & 0o777 == 0o644


def test_default_names_and_overwrite_refusal(workdir, capsys):
    assert main(["compress", str(workdir / "img.png")]) == 0
    before = (workdir / "img.vqz").read_bytes()
    assert main(["compress", str(workdir / "img.png")]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (workdir / "img.vqz").read_bytes() == before
    # decompress's default output is img.png, the original: refused, original untouched
    original = (workdir / "img.png").read_bytes()
    assert main(["decompress", str(workdir / "img.vqz")]) == 1
    assert (workdir / "img.png").read_bytes() == original
    assert main(["compress", str(workdir / "img.png"), "-f"]) == 0


def test_never_overwrites_its_input_even_with_force(workdir, capsys):
    shutil.copy(workdir / "img.png", workdir / "x.vqz")
    assert main(["compress", str(workdir / "x.vqz"), "-f"]) == 1
    assert "its own input" in capsys.readouterr().err


@pytest.mark.parametrize("args,code,message", [
    (["compress", "missing.png"], 1, "missing.png: No such file"),
    (["decompress", "missing.vqz"], 1, "missing.vqz: No such file"),
    (["compress", "img.png", "--quality", "9"], 2, "no quality level 9;"),
    (["compress", "img.png", "-m", "nope"], 2, "no model 'nope'; installed: tiny"),
    (["compress", "img.png", "--threads", "0"], 2, "--threads"),
    (["compress", "img.png", "--max-pixels", "-5"], 2, "--max-pixels"),
    (["compress", "img.png", "--target-psnr", "inf"], 2, "must be a positive number, not inf"),
    (["compress", "img.png", "-c", "-o", "x.vqz"], 2, "give -c/--stdout or -o/--output, not both"),
    (["decompress", "missing.vqz", "--threads", "0"], 2, "--threads"),
    (["decompress", "missing.vqz", "-o", "out.xyz"], 2, "out.xyz: the suffix .xyz names no image format Pillow writes"),
    (["decompress", "missing.vqz", "-o", "out.psd"], 2, "out.psd: Pillow reads PSD but cannot write it"),
    (["decompress", "missing.vqz", "-o", "out"], 2, "out: no suffix to choose a format by"),
    (["compress", "img.png", "-o", "no/such/dir/x.vqz"], 1, "folder no/such/dir does not exist"),
    (["compress", "img.txt"], 1, "img.txt: not an image format Pillow reads"),
    (["compress", "."], 1, ".: Is a directory"),
    (["compress"], 2, "Missing argument"),
    (["frobnicate"], 2, "No such command"),
])
def test_errors_exit_codes(workdir, capsys, monkeypatch, args, code, message):
    monkeypatch.chdir(workdir)
    (workdir / "img.txt").write_text("not an image")
    assert main(args) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert leftovers(workdir) == []


def test_info_many_files_and_stdin(workdir, capsys, monkeypatch):
    """Every file's header, sizes as width x height (image, coded size and code maps alike); a
    file that is not a .vqz is one line naming it, and the others are still shown."""
    import io

    photo(64, 24).save(workdir / "wide.png")
    assert main(["compress", "-q", str(workdir / "img.png"), str(workdir / "wide.png")]) == 0
    (workdir / "text.vqz").write_text("not a vqz")
    args = [str(workdir / n) for n in ("img.vqz", "text.vqz", "wide.vqz")]
    assert main(["info", *args]) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"vqzip: error: {workdir / 'text.vqz'}: not a vqzip file") and err.count("\n") == 1
    assert out.index(f"{args[0]}:\n") < out.index(f"{args[2]}:\n")
    assert "48 x 40" in out and "6 x 5 codes" in out and "12 x 10 codes" in out  # 48 x 40: maps 1/8 and 1/4
    assert "64 x 24" in out and "8 x 3 codes" in out and "16 x 6 codes" in out  # 64 x 24
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO((workdir / "wide.vqz").read_bytes())))
    assert main(["info", "-"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<stdin>:\n") and "64 x 24" in out and "scale 1: 64 x 24" in out and "8 x 3 codes" in out


def test_an_image_pillow_fails_on_while_coding_is_one_line(workdir, capsys):
    from test_api import _gif_cut_in_its_second_frame

    _gif_cut_in_its_second_frame(workdir / "cut.gif")
    assert main(["compress", str(workdir / "cut.gif")]) == 1  # was IndexError's traceback
    err = capsys.readouterr().err
    assert err.startswith(f"vqzip: error: {workdir / 'cut.gif'}: cannot read the image") and err.count("\n") == 1


def test_damaged_file_one_line_error_no_output(workdir, capsys):
    assert main(["compress", str(workdir / "img.png")]) == 0
    data = bytearray((workdir / "img.vqz").read_bytes())
    data[len(data) // 2] ^= 0x10
    (workdir / "bad.vqz").write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["decompress", str(workdir / "bad.vqz")]) == 1
    err = capsys.readouterr().err
    assert "checksum" in err and len(err.strip().splitlines()) == 1
    assert not (workdir / "bad.png").exists() and leftovers(workdir) == []


def test_not_a_vqz(workdir, capsys):
    assert main(["decompress", str(workdir / "img.png"), "-o", str(workdir / "o.png")]) == 1
    assert "not a vqzip file" in capsys.readouterr().err


def test_levels_lists_every_level_and_the_default(tiny, capsys):
    assert main(["levels"]) == 0
    out = capsys.readouterr().out
    assert "1/2" in out and "default" in out and "tiny" in out and "maps" in out and "nearest codes" in out


def test_a_malformed_manifest_is_one_line_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "manifest.json").write_text('{"default": "vqz-base", "models": {}}')
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(tmp_path))
    assert main(["levels"]) == 1
    err = capsys.readouterr().err
    assert f"manifest {tmp_path / 'manifest.json'}: levels: missing" in err and "Traceback" not in err


def _forged(data: bytes, width: int, height: int) -> bytes:
    """The file with another image size in its header and the CRC-32 made to match."""
    import struct
    import zlib

    b = bytearray(data)
    b[6:14] = struct.pack("<II", width, height)
    b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])))
    return bytes(b)


@pytest.mark.parametrize("make,message", [
    (lambda d, w: b"", "not a vqzip file"),
    (lambda d, w: (w / "img.png").read_bytes(), "not a vqzip file"),
    (lambda d, w: d[:30], "truncated"),
    (lambda d, w: d[:4] + b"\x09" + d[5:], "unsupported format version 9"),
    (lambda d, w: _forged(d, 60000, 60000), "3,600,000,000 pixels exceeds the limit"),
    (lambda d, w: _forged(d, 50, 40), "do not fit a 50x40 image"),
    (lambda d, w: d[:-9] + bytes([d[-9] ^ 4]) + d[-8:], "checksum mismatch"),
], ids=["empty", "png", "truncated", "version", "bomb", "lying-size", "bit-flip"])
def test_hostile_files_one_line_error_no_output(workdir, capsys, make, message):
    assert main(["compress", str(workdir / "img.png")]) == 0
    (workdir / "bad.vqz").write_bytes(make((workdir / "img.vqz").read_bytes(), workdir))
    capsys.readouterr()
    assert main(["decompress", str(workdir / "bad.vqz")]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"vqzip: error: {workdir / 'bad.vqz'}: ")  # which file, in a batch too
    assert not (workdir / "bad.png").exists() and leftovers(workdir) == []


def test_max_pixels_flag(workdir, capsys):
    assert main(["compress", str(workdir / "img.png"), "--max-pixels", "1000"]) == 1
    assert "48x40 = 1,920 pixels exceeds the limit of 1,000" in capsys.readouterr().err
    for limit in ("500", "1500"):  # under half the size (Pillow's refusal) and between (its warning): vqzip's line alone
        assert main(["compress", str(workdir / "img.png"), "--max-pixels", limit]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"exceeds the limit of {int(limit):,} (a decompression-bomb guard" in err
    assert main(["compress", str(workdir / "img.png"), "--max-pixels", "0"]) == 0
    assert main(["decompress", str(workdir / "img.vqz"), "--max-pixels", "1000"]) == 1
    assert not (workdir / "img.png.tmp").exists() and leftovers(workdir) == []


def test_warnings_are_one_line_and_the_image_comes_back(workdir, capsys):
    import numpy as np
    from PIL import Image

    Image.fromarray(np.arange(16 * 12, dtype=np.uint16).reshape(12, 16) * 300).save(workdir / "deep.png")
    assert main(["compress", str(workdir / "deep.png")]) == 0
    err = capsys.readouterr().err
    assert f"vqzip: warning: {workdir / 'deep.png'}: I;16 image reduced to 8 bits per pixel\n" in err
    assert "Traceback" not in err
    assert main(["decompress", str(workdir / "deep.vqz"), "-o", str(workdir / "deep-out.png")]) == 0
    with Image.open(workdir / "deep-out.png") as im:
        assert im.mode == "L" and im.size == (16, 12)


def test_alpha_cannot_go_to_jpeg_one_line_error_before_decoding(workdir, capsys, monkeypatch):
    from vqzip import api

    photo(20, 20, "RGBA").save(workdir / "a.png")
    assert main(["compress", str(workdir / "a.png")]) == 0
    capsys.readouterr()
    monkeypatch.setattr(api, "decompress", lambda *a, **k: pytest.fail("decoded before refusing"))
    assert main(["decompress", str(workdir / "a.vqz"), "-o", str(workdir / "a.jpg")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"vqzip: error: {workdir / 'a.jpg'}: JPEG cannot hold this RGBA image (") and err.count("\n") == 1
    assert not (workdir / "a.jpg").exists() and leftovers(workdir) == []


def test_every_cheap_check_runs_before_any_coding(workdir, capsys, monkeypatch):
    """Existing outputs, missing inputs and files that are not images are all reported before
    the first image is coded; the others are still done."""
    import sys

    from vqzip import api

    real = api.compress
    monkeypatch.setattr(api, "compress", lambda *a, **k: print("CODING", file=sys.stderr) or real(*a, **k))
    photo(24, 16).save(workdir / "b.png")
    (workdir / "img.vqz").write_bytes(b"someone else's file")
    (workdir / "text.png").write_text("not an image")
    args = [str(workdir / n) for n in ("img.png", "missing.png", "text.png", "b.png")]
    assert main(["compress", *args]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[:4] == [f"vqzip: error: {workdir / 'img.vqz'} already exists; not overwritten (use -f to overwrite)",
                         f"vqzip: error: {workdir / 'missing.png'}: No such file or directory",
                         f"vqzip: error: {workdir / 'text.png'}: not an image format Pillow reads",
                         "CODING"]
    assert (workdir / "b.vqz").exists() and (workdir / "img.vqz").read_bytes() == b"someone else's file"


def test_a_model_that_fails_to_load_is_one_error_before_any_image(tiny_checkpoints, tmp_path, monkeypatch, capsys):
    root = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoints, root)
    (root / "tiny" / "model.safetensors").write_bytes(b"damaged")
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    for name in ("a.png", "b.png"):
        photo(16, 16).save(tmp_path / name)
    assert main(["compress", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "damaged" in err and not list(tmp_path.glob("*.vqz"))


def _on_a_terminal(args, stdin=None):
    """Run vqzip with its standard output on a pseudo-terminal: (exit code, stderr, what reached
    the terminal)."""
    import os
    import pty
    import subprocess
    import sys

    main_fd, term = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "vqzip", *args], stdin=stdin, stdout=term, stderr=subprocess.PIPE,
                              timeout=120)
    finally:
        os.close(term)
    shown = b""
    try:
        while chunk := os.read(main_fd, 1 << 16):
            shown += chunk
    except OSError:  # the terminal's other end is closed: all read
        pass
    os.close(main_fd)
    return done.returncode, done.stderr.decode(), shown


@pytest.mark.slow  # processes
def test_no_binary_to_a_terminal(workdir, tiny_checkpoints, monkeypatch):
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(tiny_checkpoints))
    with open(workdir / "img.png", "rb") as f:
        code, err, shown = _on_a_terminal(["compress", "-"], stdin=f)
    assert code == 1 and shown == b""
    assert err == ("vqzip: error: <stdout>: is a terminal; not writing compressed data to it "
                   "(redirect it, or use -o; -f to force)\n")


def test_no_binary_to_or_from_a_terminal_unless_forced(workdir, capsysbinary, monkeypatch):
    from vqzip.cli import batch

    assert main(["compress", str(workdir / "img.png")]) == 0
    capsysbinary.readouterr()
    monkeypatch.setattr(batch, "terminal", lambda stream: True)
    assert main(["decompress", "-c", str(workdir / "img.vqz")]) == 1
    out = capsysbinary.readouterr()
    assert out.out == b"" and b"<stdout>: is a terminal; not writing a PNG image to it" in out.err
    assert main(["decompress", "-", "-o", str(workdir / "x.png")]) == 1
    assert b"<stdin>: is a terminal; not reading compressed data from it" in capsysbinary.readouterr().err
    assert main(["compress", "-", "-o", str(workdir / "x.vqz")]) == 1
    assert b"<stdin>: is a terminal; not reading an image from it" in capsysbinary.readouterr().err
    assert main(["decompress", "-c", "-f", str(workdir / "img.vqz")]) == 0  # -f: as the user says
    assert capsysbinary.readouterr().out[:4] == b"\x89PNG"


def test_re_encoding_a_vqz_warns_and_still_does_it(workdir, capsys):
    from vqzip import container

    assert main(["compress", str(workdir / "img.png")]) == 0
    capsys.readouterr()
    assert main(["compress", str(workdir / "img.vqz"), "-o", str(workdir / "again.vqz")]) == 0
    err = capsys.readouterr().err
    assert f"vqzip: warning: {workdir / 'img.vqz'}: the image is a .vqz file: coding its decoded pixels again" in err
    assert (workdir / "again.vqz").read_bytes()[:4] == container.MAGIC
    assert main(["decompress", str(workdir / "img.vqz"), "-o", str(workdir / "y.vqz")]) == 0
    err = capsys.readouterr().err
    assert f"vqzip: warning: {workdir / 'y.vqz'}: writing .vqz codes the decoded image again" in err
    assert (workdir / "y.vqz").read_bytes()[:4] == container.MAGIC


def test_sixteen_bit_rgb_warns_as_gray_does(workdir, capsys):
    from test_intake import png16

    png16(workdir / "deep.png", "RGB", 16, 12)
    assert main(["compress", str(workdir / "deep.png")]) == 0
    err = capsys.readouterr().err
    assert f"vqzip: warning: {workdir / 'deep.png'}: 16-bit RGB image reduced to 8 bits per channel\n" in err


def test_damaged_weights_are_one_line_error(tiny_checkpoints, tmp_path, monkeypatch, capsys):
    root = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoints, root)
    weights = root / "tiny" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    photo(16, 16).save(tmp_path / "x.png")
    assert main(["compress", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "damaged" in err and "sha256" in err and "Traceback" not in err


@pytest.mark.parametrize("fmt,suffix", [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("TIFF", "tif"),
                                        ("BMP", "bmp"), ("GIF", "gif")])
def test_formats_pillow_reads(workdir, fmt, suffix):
    photo(30, 22, seed=3).save(workdir / f"in.{suffix}", fmt)
    assert main(["compress", str(workdir / f"in.{suffix}"), "-o", str(workdir / "in.vqz")]) == 0
    assert main(["decompress", str(workdir / "in.vqz"), "-o", str(workdir / "out.png")]) == 0
    from PIL import Image

    with Image.open(workdir / "out.png") as im:
        assert im.size == (30, 22)


def test_interrupt_while_writing_leaves_nothing(workdir, capsys, monkeypatch):
    """Ctrl-C after the temporary file is written, before it is linked into place."""
    from vqzip import fileio

    def interrupted(*args, **kwargs):
        assert leftovers(workdir)  # the temporary file exists at this point
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio, "_link_new", interrupted)
    assert main(["compress", str(workdir / "img.png")]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (workdir / "img.vqz").exists() and leftovers(workdir) == []


def test_an_existing_output_is_refused_before_any_decoding(workdir, capsys, monkeypatch):
    assert main(["compress", str(workdir / "img.png")]) == 0
    (workdir / "img.png").rename(workdir / "kept.png")
    (workdir / "img.png").write_bytes(b"someone else's file")
    from vqzip import api

    monkeypatch.setattr(api, "decompress", lambda *a, **k: pytest.fail("decoded before refusing"))
    assert main(["decompress", str(workdir / "img.vqz")]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (workdir / "img.png").read_bytes() == b"someone else's file"


@pytest.mark.parametrize("command,usage,defaults", [
    (["compress"], "vqzip compress [OPTIONS] INPUT...",
     ["-o, --output PATH", "[default: (each INPUT with .vqz)]", "--quality Q", "[default: (the default level)]",
      "--threads N", "[default: 40000000; x>=0]"]),
    (["decompress"], "vqzip decompress [OPTIONS] INPUT...",
     ["[default: (each INPUT as .png)]", "written as INPUT.preview.png unless -o says otherwise."]),
    (["info"], "vqzip info [OPTIONS] INPUT...", ["INPUT... .vqz files, or - for stdin."]),
    (["levels"], "vqzip levels [OPTIONS]", []),
    (["train", "vqvae"], "vqzip train vqvae [OPTIONS]",
     ["--data FOLDER", "[required]", "--steps N Training steps. [default: 4000]", "[default: 0.001]", "[default: auto]"]),
    (["train", "prior"], "vqzip train prior [OPTIONS]", ["[default: 3000]"]),
    (["train", "export"], "vqzip train export [OPTIONS]", ["[default: ($XDG_DATA_HOME/vqzip/models, else ~/.local/share/vqzip/models)]"]),
    (["rd-curve"], "vqzip rd-curve [OPTIONS] INPUT...", ["[default: (every shipped level)]", "[default: (every one installed)]"]),
    ([], "vqzip [OPTIONS] COMMAND [ARGS]...", ["-V, --version"]),
])
def test_help_is_clean_and_shows_defaults(capsys, command, usage, defaults):
    """No type labels (<bool>, <list[str]>), nothing eaten by markup (a space before a full
    stop), no {INPUT...}... in the usage line, and the defaults."""
    import re

    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    text = " ".join(out.split())
    assert out.startswith(f"Usage: {usage}\n")
    assert not re.search(r"<(bool|str|int|float|path|list)", out) and "{" not in out
    assert not re.search(r" [.,;:](\s|$)", out)
    for d in defaults:
        assert d in text


def test_an_interrupt_is_said_once(workdir, capsys, monkeypatch):
    from vqzip import api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "compress", interrupted)
    assert main(["compress", str(workdir / "img.png")]) == 130
    assert capsys.readouterr().err == "vqzip: interrupted\n"


def test_test_decodes_fully_writes_nothing_and_stops_at_the_first_damaged_file(workdir, capsys):
    from vqzip import container

    photo(40, 32, seed=1).save(workdir / "b.png")
    assert main(["compress", "-q", str(workdir / "img.png"), str(workdir / "b.png")]) == 0
    data = (workdir / "b.vqz").read_bytes()
    header, streams, alpha = container.unpack(data)
    bad = bytearray(streams[-1])
    bad[len(bad) // 2] ^= 0x40  # damage behind a recomputed file CRC: only a full decode finds it
    (workdir / "c.vqz").write_bytes(container.pack(header, streams[:-1] + [bytes(bad)], alpha))
    before = sorted(p.name for p in workdir.iterdir())
    assert main(["test", str(workdir / "img.vqz"), str(workdir / "b.vqz")]) == 0
    assert capsys.readouterr().err.count(": OK\n") == 2
    assert main(["test", str(workdir / "img.vqz"), str(workdir / "c.vqz"), str(workdir / "b.vqz")]) == 1
    err = capsys.readouterr().err
    assert err.count(": OK\n") == 1 and f"vqzip: error: {workdir / 'c.vqz'}: " in err and "b.vqz" not in err
    assert sorted(p.name for p in workdir.iterdir()) == before


def test_info_and_levels_print_plain_text_into_a_pipe_and_json_when_asked(workdir, capsys):
    import json

    assert main(["compress", "-q", str(workdir / "img.png")]) == 0
    for args in (["info", str(workdir / "img.vqz")], ["levels"]):
        assert main(args) == 0
        out = capsys.readouterr().out
        assert not set(out) & set("─│┃━┏┡└┌"), out  # no box drawing into a pipe
    assert main(["info", "--json", str(workdir / "img.vqz"), str(workdir / "img.png")]) == 1
    (f,) = json.loads(capsys.readouterr().out)
    assert (f["file"], f["width"], f["height"], f["model"], [(m["cols"], m["rows"]) for m in f["maps"]]) == \
        (str(workdir / "img.vqz"), 48, 40, "tiny", [(6, 5), (12, 10)])
    assert f["bpp"] == 8 * (workdir / "img.vqz").stat().st_size / (48 * 40)
    assert main(["levels", "--json"]) == 0
    levels = json.loads(capsys.readouterr().out)
    assert [lv["quality"] for lv in levels] == [1, 2] and [lv["default"] for lv in levels] == [False, True]
    assert main(["levels"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split("  ")
    assert all(h.strip() for h in header if h) and "Kodak bpp" in "  ".join(header) and header[-1].strip() == "default"


def test_levels_give_the_kodak_figures_of_the_shipped_cards(monkeypatch):
    from vqzip import zoo

    monkeypatch.delenv("VQZIP_CHECKPOINTS", raising=False)
    figures = {lv.quality: zoo.expected(lv) for lv in zoo.levels()}
    assert all(figures.values())
    assert figures[5] == zoo.Expected(0.2397, 29.48)  # vqz-l3's card, level 5
    assert sorted(f.bpp for f in figures.values()) == [f.bpp for _, f in sorted(figures.items())]


def test_vqzip_levels_prints_the_kodak_figures_of_the_shipped_levels_and_no_anchor(monkeypatch, capsys):
    import json

    monkeypatch.delenv("VQZIP_CHECKPOINTS", raising=False)
    assert main(["levels", "--json"]) == 0
    rows = {r["quality"]: r for r in json.loads(capsys.readouterr().out)}
    assert all(r["kodak_bpp"] and r["kodak_psnr"] and r["anchor"] is None for r in rows.values())
    assert (rows[5]["kodak_bpp"], rows[5]["kodak_psnr"]) == (0.2397, 29.48)  # vqz-l3's card, level 5
    assert main(["levels"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "anchor" in lines[0].split()
    (five,) = [line.split() for line in lines[1:] if line.startswith("5 ")]
    assert five[five.index("0.2397") - 1] == "-" and "29.48" in five


@pytest.mark.parametrize("phase", ["vqvae", "prior"])
def test_a_warmup_longer_than_the_steps_is_bad_usage(tmp_path, capsys, phase):
    args = ["train", phase, "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--steps", "30", "--warmup", "100"]
    assert main(args) == 2
    assert "a warm-up of 100 steps is longer than the 30 steps trained" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "run").exists()


def test_training_progress_into_a_log_is_whole_lines(capsys):
    from vqzip.cli import train

    context, update = train._progress("prior")
    with context:
        update(10, 30, {"loss": 1.23456, "bits_per_code_of_the_fine_map": 7.5, "lr": 0.0003})
    assert capsys.readouterr().err == "prior 10/30 loss=1.235 bits_per_code_of_the_fine_map=7.500 lr=0.000\n"


@pytest.mark.slow  # a process of its own: in this one every command is registered already
def test_help_before_a_command_lists_every_command():
    import subprocess
    import sys

    from vqzip.cli import COMMANDS

    done = subprocess.run([sys.executable, "-m", "vqzip", "--help", "compress"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    listed = done.stdout.split("Commands:")[1]
    assert [c for c in COMMANDS if f"\n  {c} " in listed] == list(COMMANDS)
