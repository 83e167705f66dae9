"""A few seconds of the .vqz fuzzer (vqzip/fuzz.py; bench/fuzz.py runs it longer)."""
import pytest

from conftest import photo
from vqzip import codec, fuzz


@pytest.mark.parametrize("preview", [False, True])
@pytest.mark.slow  # hundreds of mutated files
def test_mutated_files_give_clean_errors_or_exact_decodes(tiny, preview):
    files = [codec.compress(photo(24, 16, seed=1), tiny), codec.compress(photo(10, 7, "RGBA", seed=2), tiny),
             codec.compress(photo(9, 13, "L", seed=3), tiny)]
    outcomes = fuzz.run(files, tries=300, seed=0, seconds=10, preview=preview)
    assert len(outcomes) == 300
    bad = [o for o in outcomes if o.verdict not in ("error", "exact", "consistent")]
    assert not bad, bad[:5]
    assert any(o.verdict == "error" for o in outcomes)
    # damage the checksum still covers never decodes to anything but the original
    assert all(o.verdict in ("error", "exact") for o in outcomes if not o.kind.endswith("crc"))
