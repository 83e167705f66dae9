"""Safe output: atomic no-clobber, permissions from the umask without changing it, and no
temporary file left behind by an error, Ctrl-C or SIGTERM."""
import os
import subprocess
import sys
import threading

import pytest

from vqzip import fileio
from vqzip.errors import VqzError


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_an_existing_output_is_kept_without_force_and_replaced_with_it(tmp_path):
    out = tmp_path / "x.vqz"
    fileio.write_atomic(out, b"first")
    with pytest.raises(VqzError, match="already exists"):
        fileio.write_atomic(out, b"second")
    assert out.read_bytes() == b"first"
    fileio.write_atomic(out, b"third", force=True)
    assert out.read_bytes() == b"third" and leftovers(tmp_path) == []


def test_racing_writers_without_force_exactly_one_wins(tmp_path):
    """The existence check and the write are one atomic step (a hard link): of writers racing
    for one name, one succeeds and the others are told, never silently replaced."""
    out, results = tmp_path / "race.vqz", []
    barrier = threading.Barrier(8)

    def writer(k):
        barrier.wait()
        try:
            fileio.write_atomic(out, b"writer %d" % k)
            results.append(k)
        except VqzError:
            pass

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1 and out.read_bytes() == b"writer %d" % results[0]
    assert leftovers(tmp_path) == []


def test_permissions_follow_the_umask_which_is_never_changed(tmp_path, monkeypatch):
    old = os.umask(0o077)
    try:
        monkeypatch.setattr(os, "umask", lambda *a: pytest.fail("umask is process-wide: changing it races threads"))
        fileio.write_atomic(tmp_path / "private.vqz", b"x")
    finally:
        monkeypatch.undo()
        os.umask(old)
    assert (tmp_path / "private.vqz").stat().st_mode & 0o777 == 0o600


SIGTERM_SCRIPT = """
import os, signal, sys, time
from pathlib import Path
from vqzip import cli, fileio
signal.signal(signal.SIGTERM, cli._terminated)  # what the vqzip command installs
link = fileio._link_new
def slow(tmp, out):  # SIGTERM arrives while the temporary file exists
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
    link(tmp, out)
fileio._link_new = slow
fileio.write_atomic(Path(sys.argv[1]), b"x" * 1000)
"""


def test_sigterm_mid_write_leaves_nothing(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SIGTERM_SCRIPT, str(tmp_path / "out.vqz")], timeout=60)
    assert proc.returncode == 143
    assert list(tmp_path.iterdir()) == []


def test_a_write_that_fails_is_a_vqz_error_naming_the_output(tmp_path):
    with pytest.raises(VqzError, match="nothere/x.vqz: No such file or directory"):
        fileio.write_atomic(tmp_path / "nothere" / "x.vqz", b"data")
    with pytest.raises(VqzError, match="File name too long"):
        fileio.write_atomic(tmp_path / ("y" * 256), b"data")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["y" * 249 + ".vqz", "ÿ" * 127 + ".vqz"])  # 253 and 258 bytes: the latter too long
def test_a_long_output_name_takes_a_temporary_name_within_the_limit(tmp_path, name):
    assert len(fileio.temp_name(name, "0" * 8).encode()) <= fileio.NAME_MAX
    if len(name.encode()) <= fileio.NAME_MAX:
        fileio.write_atomic(tmp_path / name, b"data")
        assert [p.name for p in tmp_path.iterdir()] == [name]
