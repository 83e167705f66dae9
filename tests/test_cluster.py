"""Batch coding on a local Dask cluster of 2 worker processes writes what the CLI writes."""
import pytest

from conftest import photo
from vqzip.cli import main

pytestmark = pytest.mark.slow  # a Dask cluster of processes

distributed = pytest.importorskip("distributed")


def test_dask_cluster_writes_the_bytes_the_cli_writes(tiny, tmp_path):
    from vqzip import cluster

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    photo(40, 24, seed=1).save(src / "a.png")
    photo(17, 33, "RGBA", seed=2).save(src / "sub" / "b.png")
    (src / "sub" / "broken.png").write_bytes(b"not an image")
    (tmp_path / "dask").mkdir()
    (tmp_path / "dask" / "a.vqz").write_bytes(b"keep me")  # an existing output is refused, not replaced

    assert main(["compress", "-q", "-r", str(src), "-o", str(tmp_path / "cli")]) == 1  # broken.png fails
    with distributed.Client(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as client:
        got = cluster.compress_tree(client, src, tmp_path / "dask", threads=1)
        assert [(o.src.name, o.error is None) for o in got] == [("a.png", False), ("b.png", True), ("broken.png", False)]
        assert "exists" in got[0].error and "broken.png" in got[2].error
        assert (tmp_path / "dask" / "a.vqz").read_bytes() == b"keep me"
        assert (tmp_path / "dask" / "sub" / "b.vqz").read_bytes() == (tmp_path / "cli" / "sub" / "b.vqz").read_bytes()

        got = cluster.compress_tree(client, src, tmp_path / "dask", force=True)
        assert (tmp_path / "dask" / "a.vqz").read_bytes() == (tmp_path / "cli" / "a.vqz").read_bytes()

        back = cluster.decompress_tree(client, tmp_path / "dask", tmp_path / "png")
        assert all(o.error is None for o in back) and len(back) == 2
    assert main(["decompress", "-q", "-r", str(tmp_path / "cli"), "-o", str(tmp_path / "cli-png")]) == 0
    for name in ("a.png", "sub/b.png"):
        assert (tmp_path / "png" / name).read_bytes() == (tmp_path / "cli-png" / name).read_bytes()
