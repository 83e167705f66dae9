"""The README's Python examples, run as doctests against the shipped model."""
import doctest
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the shipped model on the README's examples and shell session

ROOT = Path(__file__).resolve().parent.parent


def test_readme_examples(monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples use samples/tiger.png
    monkeypatch.delenv("VQZIP_CHECKPOINTS", raising=False)
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10 and result.failed == 0


def test_readme_shell_session(tmp_path):
    """The README's tested sh block, line by line in a scratch folder, vqzip run as this Python's."""
    import re
    import shutil
    import subprocess
    import sys

    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- tested: the next sh block -->\n```sh\n(.*?)```", text, re.S).group(1)
    (tmp_path / "samples").mkdir()
    shutil.copy(ROOT / "samples" / "tiger.png", tmp_path / "samples")
    env = {k: v for k, v in os.environ.items() if k != "VQZIP_CHECKPOINTS"}
    for line in block.strip().splitlines():
        cmd = re.sub(r"(^|\| )vqzip ", lambda m: f"{m.group(1)}{sys.executable} -m vqzip ", line)
        done = subprocess.run(["bash", "-eo", "pipefail", "-c", cmd], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (line, done.stderr)
    assert (tmp_path / "coded" / "a.vqz").exists() and (tmp_path / "decoded" / "b.png").exists()
    assert (tmp_path / "a-pipe.png").read_bytes()[:4] == b"\x89PNG"
