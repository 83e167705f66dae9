"""The command line with many files, folders, pipes, targets, -q/-v/-c."""
import os
import subprocess
import sys

import pytest
from PIL import Image

from conftest import photo
from vqzip.cli import main


def images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        photo(32 + 8 * k, 24, seed=k).save(folder / name)


def test_many_files_summary_and_inputs_kept(tiny, tmp_path, capsys):
    images(tmp_path, ["a.png", "b.jpg", "c.bmp"])
    assert main(["compress", *(str(tmp_path / n) for n in ("a.png", "b.jpg", "c.bmp"))]) == 0
    err = capsys.readouterr().err
    assert all((tmp_path / f"{n}.vqz").exists() and (tmp_path / f"{n}.{e}").exists()
               for n, e in (("a", "png"), ("b", "jpg"), ("c", "bmp")))
    assert "vqzip compress" in err and "bpp (total)" in err and err.count(" -> ") == 3


def test_the_summary_bpp_is_all_bits_over_all_pixels(tiny, tmp_path, capsys):
    """A 1x1 image's header is hundreds of bits per pixel: an unweighted mean of per-file bpp
    was dominated by it."""
    photo(1, 1).save(tmp_path / "dot.png")
    photo(64, 48).save(tmp_path / "photo.png")
    assert main(["compress", str(tmp_path / "dot.png"), str(tmp_path / "photo.png")]) == 0
    sizes = [(tmp_path / n).stat().st_size for n in ("dot.vqz", "photo.vqz")]
    total = f"{8 * sum(sizes) / (1 + 64 * 48):.4f}"
    assert 8 * sizes[0] > 100  # the dot alone: an unweighted mean would be over 50
    assert f"│ {total} " in capsys.readouterr().err
    assert main(["decompress", str(tmp_path / "dot.vqz"), str(tmp_path / "photo.vqz"), "-o", str(tmp_path / "out")]) == 0
    assert f"│ {total} " in capsys.readouterr().err  # decompress: the .vqz files' bits, the same


def test_recursive_into_an_output_folder_mirrors_subfolders(tiny, tmp_path, capsys):
    images(tmp_path / "in", ["a.png"])
    images(tmp_path / "in" / "sub", ["b.png", "notes.txt.png"])
    (tmp_path / "in" / "readme.txt").write_text("not an image")
    assert main(["compress", "-r", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 0
    made = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.vqz"))
    assert made == ["a.vqz", "sub/b.vqz", "sub/notes.txt.vqz"]
    capsys.readouterr()
    assert main(["decompress", "-r", str(tmp_path / "out"), "-q"]) == 0
    assert capsys.readouterr().err.strip() == ""
    with Image.open(tmp_path / "out" / "sub" / "b.png") as im:
        assert im.size == (32, 24)  # the first image written into sub/


def test_a_failure_is_reported_and_the_rest_are_done(tiny, tmp_path, capsys):
    images(tmp_path, ["a.png"])
    (tmp_path / "bad.png").write_text("not an image")
    assert main(["compress", str(tmp_path / "bad.png"), str(tmp_path / "a.png")]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'bad.png'}: not an image format Pillow reads" in err and (tmp_path / "a.vqz").exists()
    assert "Traceback" not in err


def test_folder_without_r_is_an_error_and_stdout_with_many_bad_usage(tiny, tmp_path, capsys):
    images(tmp_path, ["a.png", "b.png"])
    assert main(["compress", str(tmp_path)]) == 1
    assert "use -r" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["decompress", "-r", str(tmp_path / "empty")]) == 1
    assert capsys.readouterr().err == f"vqzip: error: {tmp_path / 'empty'}: no .vqz files in it\n"
    assert main(["compress", "-c", str(tmp_path / "a.png"), str(tmp_path / "b.png")]) == 2
    assert "Invalid value for -c/--stdout: takes one input, not several" in capsys.readouterr().err


@pytest.mark.slow  # processes
def test_stdin_to_stdout_through_a_pipe(tiny_checkpoints, tmp_path):
    photo(40, 30).save(tmp_path / "a.png")
    env = {**os.environ, "VQZIP_CHECKPOINTS": str(tiny_checkpoints)}
    with open(tmp_path / "a.png", "rb") as f:
        vqz = subprocess.run([sys.executable, "-m", "vqzip", "compress", "-"], stdin=f, capture_output=True,
                             env=env, check=True).stdout
    assert vqz[:4] == b"\x89VQZ"
    png = subprocess.run([sys.executable, "-m", "vqzip", "decompress", "-", "-q"], input=vqz, capture_output=True,
                         env=env, check=True)
    assert png.stdout[:8] == b"\x89PNG\r\n\x1a\n" and png.stderr == b""
    assert not any(p.suffix == ".vqz" for p in tmp_path.iterdir())


def test_stdout_flag_writes_the_file_bytes(tiny, tmp_path, capsysbinary):
    images(tmp_path, ["a.png"])
    assert main(["compress", "-c", str(tmp_path / "a.png")]) == 0
    out = capsysbinary.readouterr().out
    assert out[:4] == b"\x89VQZ" and not (tmp_path / "a.vqz").exists()


def test_target_says_which_level_it_chose(tiny, tmp_path, capsys):
    images(tmp_path, ["a.png"])
    assert main(["compress", str(tmp_path / "a.png"), "--target-bpp", "1000", "-v"]) == 0
    err = capsys.readouterr().err
    assert "quality 2 (scale 1) chosen for 1000.0 bpp" in err and "tiny at scale 1" in err
    assert main(["compress", str(tmp_path / "a.png"), "--target-psnr", "30", "--quality", "1", "-f"]) == 2
    assert "at most one of" in capsys.readouterr().err
    assert main(["compress", str(tmp_path / "a.png"), "--quality", "8", "-f"]) == 2  # bad usage, as documented
    assert "no quality level 8" in capsys.readouterr().err
    assert main(["compress", str(tmp_path / "a.png"), "--target-bpp", "-1", "-f"]) == 2


def test_help_documents_exit_codes(capsys):
    assert main(["--help"]) == 0
    assert "Exit codes: 0 success; 1 an error" in capsys.readouterr().out


def test_preview_from_the_command_line(tiny, tmp_path, capsysbinary):
    images(tmp_path, ["a.png", "b.png"])
    original = (tmp_path / "a.png").read_bytes()
    assert main(["compress", "-q", str(tmp_path / "a.png"), str(tmp_path / "b.png")]) == 0
    capsysbinary.readouterr()
    assert main(["decompress", "--preview", str(tmp_path / "a.vqz"), str(tmp_path / "b.vqz")]) == 0
    bits = sum(8 * (tmp_path / f"{n}.vqz").stat().st_size for n in ("a", "b"))
    assert f"{bits / (32 * 24 + 40 * 24):.4f}" in capsysbinary.readouterr().err.decode()  # the files' bpp, not the previews'
    for name, width in (("a", 32), ("b", 40)):
        with Image.open(tmp_path / f"{name}.preview.png") as im:
            assert im.size == (width // 4, 6)
    assert (tmp_path / "a.png").read_bytes() == original
    capsysbinary.readouterr()
    assert main(["decompress", "-p", "-c", str(tmp_path / "a.vqz")]) == 0
    assert capsysbinary.readouterr().out == (tmp_path / "a.preview.png").read_bytes()


def test_targets_print_what_they_reached(tiny, tmp_path, capsys):
    """--target-bpp prints the file's bpp, --target-psnr its PSNR too, each as measured."""
    import numpy as np

    from vqzip import metrics

    images(tmp_path, ["a.png"])
    n = 32 * 24
    assert main(["compress", str(tmp_path / "a.png"), "--target-bpp", "3", "-o", str(tmp_path / "b.vqz")]) == 0
    err = capsys.readouterr().err
    assert f": {(tmp_path / 'b.vqz').stat().st_size:,} bytes, {8 * (tmp_path / 'b.vqz').stat().st_size / n:.4f} bpp, " in err
    assert "chosen for 3.0 bpp" in err
    assert main(["compress", str(tmp_path / "a.png"), "--target-psnr", "5", "-o", str(tmp_path / "p.vqz")]) == 0
    err = capsys.readouterr().err
    assert main(["decompress", str(tmp_path / "p.vqz"), "-o", str(tmp_path / "p.png"), "-q"]) == 0
    with Image.open(tmp_path / "a.png") as a, Image.open(tmp_path / "p.png") as p:
        psnr = metrics.psnr(np.asarray(a.convert("RGB")), np.asarray(p.convert("RGB")))
    size = (tmp_path / "p.vqz").stat().st_size
    assert f": {size:,} bytes, {8 * size / n:.4f} bpp, {psnr:.2f} dB, quality " in err and "chosen for 5.0 dB" in err


@pytest.mark.slow  # worker processes
def test_jobs_write_the_bytes_of_a_serial_run(tiny, tmp_path):
    for k in range(3):
        photo(30 + 7 * k, 20 + 5 * k, seed=k).save(tmp_path / f"{k}.png")
    names = [str(tmp_path / f"{k}.png") for k in range(3)]
    assert main(["compress", "-q", "-j", "1", *names, "-o", str(tmp_path / "one")]) == 0
    assert main(["compress", "-q", "-j", "2", *names, "-o", str(tmp_path / "two")]) == 0
    assert main(["decompress", "-q", "-j", "2", "-r", str(tmp_path / "two"), "-o", str(tmp_path / "back")]) == 0
    assert main(["decompress", "-q", "-j", "1", "-r", str(tmp_path / "one"), "-o", str(tmp_path / "back1")]) == 0
    for k in range(3):
        assert (tmp_path / "one" / f"{k}.vqz").read_bytes() == (tmp_path / "two" / f"{k}.vqz").read_bytes()
        assert (tmp_path / "back" / f"{k}.png").read_bytes() == (tmp_path / "back1" / f"{k}.png").read_bytes()


def test_a_decompress_parses_each_file_once(tiny, tmp_path, monkeypatch):
    """The check's parse (checksum, header: before anything is decoded) is the one the decoder
    uses: container.unpack runs once per file, whether read from a file or from stdin."""
    import io

    from vqzip import container

    images(tmp_path, ["a.png", "b.png"])
    assert main(["compress", "-q", str(tmp_path / "a.png"), str(tmp_path / "b.png")]) == 0
    calls = []
    unpack = container.unpack
    monkeypatch.setattr(container, "unpack", lambda data: calls.append(len(data)) or unpack(data))
    assert main(["decompress", "-q", "-j", "1", str(tmp_path / "a.vqz"), str(tmp_path / "b.vqz"), "-o", str(tmp_path / "out")]) == 0
    assert sorted(calls) == sorted((tmp_path / f"{n}.vqz").stat().st_size for n in "ab")
    calls.clear()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO((tmp_path / "a.vqz").read_bytes())))
    assert main(["decompress", "-q", "-", "-o", str(tmp_path / "stdin.png")]) == 0
    assert calls == [(tmp_path / "a.vqz").stat().st_size]
    assert (tmp_path / "stdin.png").read_bytes() == (tmp_path / "out" / "a.png").read_bytes()


@pytest.mark.parametrize("args", [["-q", "8", "a.png", "-o", "qq.vqz"], ["a.png", "b.png", "-o", "both.vqz"],
                                  ["a.png", "missing.png", "-o", "out"]])
def test_several_inputs_with_a_file_name_for_o_are_bad_usage_before_anything_is_written(tiny, tmp_path, capsys,
                                                                                       monkeypatch, args):
    images(tmp_path, ["a.png", "b.png"])
    monkeypatch.chdir(tmp_path)
    command = ["compress", *args] if args[0] != "-q" else ["compress", "-q", *args[1:]]
    assert main(command) == 2
    assert "-o takes a folder for several" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]
    assert main(["compress", "a.png", "b.png", "-o", "out/"]) == 0  # a folder, said so
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.vqz", "b.vqz"]


def test_a_target_not_met_is_said_every_time_and_strict_makes_it_an_error(tiny, tmp_path, capsys):
    images(tmp_path, ["a.png"])
    a = str(tmp_path / "a.png")
    for target, how in (("0.0001", "over it: the lowest level"), ("1000", "more than 5% under it")):
        assert main(["compress", a, "--target-bpp", target, "-f"]) == 0
        assert f"chosen for {float(target)} bpp (not met: {how}" in capsys.readouterr().err
        (tmp_path / "a.vqz").unlink()
        assert main(["compress", a, "--target-bpp", target, "--strict"]) == 1
        err = capsys.readouterr().err
        assert f"{float(target)} bpp not met (" in err and "no file written (--strict)" in err and err.count("\n") == 1
        assert not (tmp_path / "a.vqz").exists()
    assert main(["compress", a, "--target-psnr", "99", "--strict"]) == 1
    assert "99.0 dB not met (" in capsys.readouterr().err


def test_a_slow_lone_file_gets_a_status_line_at_a_terminal_and_a_quick_one_none():
    import io
    import time

    from rich.console import Console

    from vqzip.cli import batch

    for after, seconds, shown in ((0.05, 0.4, True), (5.0, 0.05, False)):
        out = io.StringIO()
        with batch.slow_status(Console(file=out, force_terminal=True, width=80), "compress big.png", after):
            time.sleep(seconds)
        assert ("compress big.png" in out.getvalue()) == shown
