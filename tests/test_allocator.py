"""The vqzip command's allocator rule: large images get glibc's mmap threshold fixed, small ones
keep its moving threshold (faster)."""
from vqzip import allocator


def test_fixed_mmap_threshold_only_from_large_images_on(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "_mallopt", lambda param, value: calls.append((param, value)))
    allocator.for_image(768 * 512)
    allocator.for_image(allocator.LARGE_IMAGE - 1)
    assert calls == []
    allocator.for_image(allocator.LARGE_IMAGE)
    assert calls == [(allocator._M_MMAP_THRESHOLD, allocator.MMAP_THRESHOLD)]


def test_mallopt_is_a_no_op_where_there_is_no_glibc(monkeypatch):
    def missing(name):
        raise OSError(name)

    monkeypatch.setattr(allocator.ctypes, "CDLL", missing)
    allocator.for_image(allocator.LARGE_IMAGE)  # nothing raised
