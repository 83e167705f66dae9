"""vqzip.runtime: the vqzip command's allocator rules (large images get glibc's mmap threshold
fixed, small ones keep its moving threshold, faster; training keeps its freed blocks), the worker
pool, and forked children on one torch thread."""
import os
import platform
import resource
import subprocess
import sys

import pytest

from vqzip import runtime


def test_fixed_mmap_threshold_only_from_large_images_on(monkeypatch):
    calls = []
    monkeypatch.setattr(runtime, "_mallopt", lambda param, value: calls.append((param, value)))
    runtime.for_image(768 * 512)
    runtime.for_image(runtime.LARGE_IMAGE - 1)
    assert calls == []
    runtime.for_image(runtime.LARGE_IMAGE)
    assert calls == [(runtime._M_MMAP_THRESHOLD, runtime.MMAP_THRESHOLD)]


def test_mallopt_is_a_no_op_where_there_is_no_glibc(monkeypatch):
    def missing(name):
        raise OSError(name)

    monkeypatch.setattr(runtime.ctypes, "CDLL", missing)
    runtime.for_image(runtime.LARGE_IMAGE)  # nothing raised


FAULTS = """
import ctypes, resource, sys
ctypes.CDLL("libc.so.6").prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE: pages of 4 KB, as the counts assume
import torch
from vqzip import runtime
if sys.argv[1] == "training":
    runtime.for_training()
for _ in range(12):  # the first steps: glibc's bins settle (measured: after 7-9 blocks)
    a = torch.empty(1 << 26, dtype=torch.uint8).fill_(1); del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    a = torch.empty(1 << 26, dtype=torch.uint8).fill_(1); del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc settings")
@pytest.mark.slow  # a process of its own
def test_training_keeps_its_large_blocks_mapped_from_step_to_step():
    """64 MB blocks allocated, written and freed in turn, as a training step's tensors are: by
    default each is a new mapping whose 16,384 pages fault in again; for training, once the
    first steps are over, the heap's pages are reused, already mapped."""
    def faults(mode):
        env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and not k.startswith("MALLOC_")}
        return int(subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True,
                                  check=True, env=env).stdout)

    default, training = faults("default"), faults("training")
    assert default >= 4 * (1 << 26) // resource.getpagesize() // 2
    assert training < default // 10


@pytest.mark.parametrize("argv, rule", [(["train", "vqvae", "--help"], "for_training"), (["train", "prior", "--help"], "for_training"),
                                        (["train", "rdo-codes", "--help"], None), (["--help"], "one_arena")])
def test_the_command_sets_its_rule_before_anything_runs(monkeypatch, argv, rule):
    from vqzip import cli

    called = []
    for name in ("for_training", "one_arena"):
        monkeypatch.setattr(runtime, name, lambda name=name: called.append(name))
    monkeypatch.setattr(sys, "argv", ["vqzip", *argv])
    monkeypatch.setattr(cli.signal, "signal", lambda *args: None)  # the test process keeps its own
    with pytest.raises(SystemExit):
        cli.run()
    assert called == ([rule] if rule else [])


def test_a_finished_pool_lets_its_workers_leave_without_sigterm(monkeypatch):
    """Workers of a finished batch exit on their own: terminating them (SIGTERM, which a worker
    takes as the CLI's handler) could catch one just before it blocks on the task queue's lock,
    and the batch then waited on it for ever (seen once in CI)."""
    import multiprocessing.process

    killed = []
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "terminate", lambda self: killed.append(self.pid))
    names = [f"{i}.png" for i in range(4)]
    assert sorted(runtime.pool_map(lambda name: name.upper(), names, 2, 1)) == sorted(n.upper() for n in names)
    assert killed == []


def test_forked_workers_run_the_threads_asked_and_share_what_was_loaded():
    import torch

    loaded = {"model": object()}  # inherited by fork, never pickled
    seen = set(runtime.pool_map(lambda k: (os.getpid(), (torch.get_num_threads(), runtime.threads()), id(loaded["model"])),
                                range(6), 2, 1))
    assert {t for _, t, _ in seen} == {(1, 1)} and {m for _, _, m in seen} == {id(loaded["model"])}
    assert os.getpid() not in {p for p, _, _ in seen}


def _threads_here(_) -> int:
    return runtime.threads()


@pytest.mark.slow  # two interpreters
def test_fresh_workers_are_spawned_with_their_threads_and_one_worker_is_this_process():
    assert list(runtime.pool_map(_threads_here, [0, 1], 2, 2, fresh=True)) == [2, 2]
    assert [p for p in runtime.pool_map(lambda _: os.getpid(), [0, 1], 1)] == [os.getpid()] * 2


@pytest.mark.slow  # a process of its own
def test_a_child_forked_after_torch_ran_starts_on_one_thread():
    """libgomp's thread pool does not survive fork: the child must not open a parallel region."""
    code = ("import os, torch, vqzip.runtime\n"
            "torch.set_num_threads(2); torch.ones(1 << 20).sum()\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    os._exit(torch.get_num_threads())\n"
            "print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "1"


def test_one_thread_gives_torch_its_threads_back():
    """torch's thread count after one_thread is what it was: torch's own BLAS is among the
    libraries one_thread holds at one thread, and restoring that hold must not undo torch's."""
    import torch

    from vqzip.runtime import one_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with one_thread():
            pass
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_child_forked_while_one_thread_is_held_can_use_it():
    """A fork while another thread of the parent holds one_thread's lock: the child, whose only
    thread is the forking one, gets a fresh lock (the held one would block it forever)."""
    import os

    from vqzip import runtime

    with runtime._lock:
        pid = os.fork()
        if pid == 0:
            try:
                with runtime.one_thread():
                    pass
            finally:
                os._exit(0)
    _wait_for_child(pid, "the forked child blocked on one_thread's lock")


def test_a_child_forked_while_an_onnx_session_is_being_made_can_make_its_own(tiny_checkpoints):
    """The ONNX graphs' locks (the shared arena's, the sessions'), held by another thread of the
    parent at the fork, are new in the child: it loads a model and runs its first graph."""
    import os

    import numpy as np

    from conftest import photo
    from vqzip import codec, zoo
    from vqzip.inference import onnx_graphs

    with onnx_graphs._arena_lock, onnx_graphs._session_lock:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                codec.encode_codes(zoo.load_folder(tiny_checkpoints / "tiny").net, np.asarray(photo(32, 32)))
                code = 0
            finally:
                os._exit(code)
    _wait_for_child(pid, "the forked child blocked on an ONNX graphs' lock")


def _wait_for_child(pid: int, blocked: str, seconds: float = 30) -> None:
    """Wait for forked child `pid` to exit 0; kill it and fail with `blocked` if it is still
    running after `seconds` (a lock it inherited held)."""
    import os
    import time

    deadline = time.time() + seconds
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    raise AssertionError(blocked)
