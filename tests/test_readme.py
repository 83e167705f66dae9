"""The README's examples run as they stand, and every relative link of the docs leads somewhere.

The Python examples run as doctests and the tested sh block line by line, both against the
shipped model; the links of README, CHANGELOG, docs/ and results/ must name files of the
repository (and headings of them, for #anchors).
"""
import doctest
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the shipped model on the README's examples and shell session

ROOT = Path(__file__).resolve().parent.parent
MAIN_COMMANDS = ("compress", "decompress", "info", "levels")


def test_readme_examples(monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples use samples/tiger.png
    monkeypatch.delenv("VQZIP_CHECKPOINTS", raising=False)
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10 and result.failed == 0


def test_readme_shell_session(tmp_path):
    """The README's tested sh block, line by line in a scratch folder, vqzip run as this Python's."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- tested: the next sh block -->\n```sh\n(.*?)```", text, re.S).group(1)
    used = set(re.findall(r"(?:^|\| )vqzip (\S+)", block, re.M))
    assert used >= set(MAIN_COMMANDS), f"the session runs no `vqzip {sorted(set(MAIN_COMMANDS) - used)}`"
    (tmp_path / "samples").mkdir()
    shutil.copy(ROOT / "samples" / "tiger.png", tmp_path / "samples")
    env = {k: v for k, v in os.environ.items() if k != "VQZIP_CHECKPOINTS"}
    for line in block.strip().splitlines():
        cmd = re.sub(r"(^|\| )vqzip ", lambda m: f"{m.group(1)}{sys.executable} -m vqzip ", line)
        done = subprocess.run(["bash", "-eo", "pipefail", "-c", cmd], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (line, done.stderr)
    assert (tmp_path / "coded" / "a.vqz").exists() and (tmp_path / "decoded" / "b.png").exists()
    assert (tmp_path / "a-pipe.png").read_bytes()[:4] == b"\x89PNG"


def _prose(text):
    """Markdown without its fenced blocks and code spans, where a link is only an example."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(path):
    """GitHub's anchor for each heading of a Markdown file: lower case, punctuation dropped."""
    headings = re.findall(r"^#+ (.+)$", _prose(path.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_relative_links_resolve():
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "results").glob("*/README.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", _prose(page.read_text())):
            if re.match(r"[a-z]+:", target):  # https:, mailto:: not the repository's
                continue
            name, _, anchor = target.partition("#")
            dest = (page.parent / name).resolve() if name else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken
