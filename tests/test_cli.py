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
    assert "48 x 40" in out and "tiny" in out
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
    (["compress", "img.png", "--quality", "9"], 1, "no quality level 9; available: 1, 2"),
    (["compress", "img.png", "-m", "nope"], 1, "unknown model 'nope'"),
    (["compress", "img.png", "-o", "no/such/dir/x.vqz"], 1, "folder no/such/dir does not exist"),
    (["compress", "img.txt"], 1, "cannot identify image file"),
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
    assert "1/2" in out and "default" in out and "tiny" in out


def test_a_malformed_manifest_is_one_line_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "manifest.json").write_text('{"default": "vqz-base", "models": {}}')
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(tmp_path))
    assert main(["levels"]) == 1
    err = capsys.readouterr().err
    assert "expected layout" in err and "Traceback" not in err
