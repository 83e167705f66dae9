"""The network's graphs in ONNX Runtime, their weights fed from the model's own tensors.

A model folder's graphs/<name>.onnx (`vqzip.training.onnx_export`) hold the operations and no
weights: each initializer is an external reference named as the model file's tensor
(`net.<state key>`), which `OnnxGraphs` gives ONNX Runtime from model.safetensors at load
(`SessionOptions.add_external_initializers`), so the weights are stored once, in the file the
model's hash covers. Sessions are made when a graph is first run; each runs on one thread
(intra-op and inter-op), and the codec runs tiles in parallel on its own threads, as it does
with torch (`vqzip.tiles.per_tile`): a result then never depends on the thread count, and a busy
core stalls one tile, not every operation. `InferenceSession.run` releases the GIL.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from vqzip.errors import ModelError
from vqzip.runtime import image_pixels


def initializer_names(graph: bytes) -> list[str]:
    """The names of an ONNX model's initializers (ModelProto.graph.initializer[].name), read
    from the protobuf wire format: the runtime needs them to feed the weights, and has no onnx
    package to parse the model with. ValueError for bytes that are not such a model."""
    def fields(buf: bytes):
        i = 0
        while i < len(buf):
            key, i = _varint(buf, i)
            number, wire = key >> 3, key & 7
            if wire == 0:
                _, i = _varint(buf, i)
                value = None
            elif wire == 2:
                n, i = _varint(buf, i)
                value, i = buf[i : i + n], i + n
            elif wire in (1, 5):
                value, i = None, i + (8 if wire == 1 else 4)
            else:
                raise ValueError(f"protobuf wire type {wire}")
            yield number, value

    names = []
    for number, g in fields(graph):
        if number == 7:  # ModelProto.graph
            for n, init in fields(g):
                if n == 5:  # GraphProto.initializer
                    names += [v.decode() for f, v in fields(init) if f == 8]  # TensorProto.name
    return names


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated protobuf")
        b = buf[i]
        value |= (b & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not b & 0x80:
            return value, i


_arena_lock = threading.Lock()
_arena_shared = False
_shrinking_run = None  # `_shrinking_options`: made once
# Held while a graph's session is made (tiles on several threads may ask for a graph first at
# once: one session); one for every OnnxGraphs, so that `after_fork` can renew it
_session_lock = threading.Lock()

# A run whose inputs hold this many bytes or more shrinks the arena at its end (`shrinks`), unless
# it codes an image of at most KEEP_ARENA_UP_TO pixels. Without that exception the fine latent's
# run of a Kodak-sized photo (768x512) shrank it at every level coding three maps (48 MiB); every
# run of two maps is under SHRINK_FROM (at most 13.5 MiB: the decoder's tile, 64x144x384
# floats). A 40 MP image's full tiles are over it in at least one graph of each tile (its
# encoder's latents 30-34 MiB, its decoder's 21 MiB; the features' 11 MiB and the coarse
# decode's 7 MiB are not), so its arena is still shrunk once or more per tile.
SHRINK_FROM = 16 << 20
KEEP_ARENA_UP_TO = 1 << 20  # pixels: two encoder tiles' area (`vqzip.tiles.TILE`)


def after_fork() -> None:
    """New locks in a forked child (`vqzip.runtime`'s hook): one that another thread of the
    parent held at the fork stays held in the child, which would wait for it forever."""
    global _arena_lock, _session_lock
    _arena_lock, _session_lock = threading.Lock(), threading.Lock()


def _share_one_arena(ort) -> None:
    """One CPU arena for every session of the process, grown by what is asked and no more.
    Each session's own arena held its graph's peak: a 3.5 MP compress and decompress (level 9)
    peaked at 3.0 GB; without arenas at 1.7 GB but with ~25% more CPU time on the network's
    part (fresh pages for every large tensor); with this one, 1.9 GB at the arena's speed
    (torch: 1.5 GB). Large runs then shrink it (`shrinks`)."""
    global _arena_shared
    with _arena_lock:
        if not _arena_shared:
            cpu = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
            ort.create_and_register_allocator(cpu, ort.OrtArenaCfg(0, 1, -1, -1))  # 1: kSameAsRequested
            _arena_shared = True


def shrinks(input_bytes: int) -> bool:
    """Whether a run whose inputs hold input_bytes ends by shrinking the arena: giving back its
    regions no run is using. The arena never shrinks by itself, and a large image's tiles of
    several graphs left it holding the sum of their peaks (a 40 MP compress at the default level
    peaked at 2,287 MB; shrinking after every run, 1,096 MB). Shrinking costs a small image ~7% of
    a decode's CPU time (the next run's tensors come in fresh pages), and there it buys little:
    runs under SHRINK_FROM, and every run for an image of at most KEEP_ARENA_UP_TO pixels
    (`vqzip.runtime.coding`; a run outside such a block is judged by its size alone), keep the
    arena as it is (docs/performance.md#memory)."""
    pixels = image_pixels()
    return input_bytes >= SHRINK_FROM and (pixels is None or pixels > KEEP_ARENA_UP_TO)


def _shrinking_options(ort):
    """The options of a run that shrinks the arena at its end (`shrinks`)."""
    global _shrinking_run
    with _arena_lock:
        if _shrinking_run is None:
            _shrinking_run = ort.RunOptions()
            _shrinking_run.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        return _shrinking_run


class OnnxGraphs:
    """graphs(name, *arrays) -> the graph's outputs: the network's graphs in ONNX Runtime.
    paths: each graph's file; tensors: the network's tensors by state key (the model file's
    `net.*` without `net.`), kept alive as long as the sessions that read them; weights: the
    file they come from, named when a graph does not fit them. A graph is loaded when first
    run: a damaged one, or one of another model, is then a ModelError naming both files."""

    def __init__(self, paths: dict[str, Path], tensors: dict[str, np.ndarray], weights: Path):
        self.paths, self.tensors, self.weights = paths, tensors, weights
        self._sessions: dict[str, object] = {}
        self._fed: list = []  # the OrtValues of the weights, which the sessions read and do not own
        self._shrinking = None  # `_shrinking_options`, with the first session

    def __call__(self, name: str, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        session = self._sessions.get(name) or self._session(name)
        feed = {i.name: np.ascontiguousarray(a, dtype=np.float32) for i, a in zip(session.get_inputs(), arrays)}
        return tuple(session.run(None, feed, self._shrinking if shrinks(sum(a.nbytes for a in feed.values())) else None))

    def _session(self, name: str):
        import onnxruntime as ort

        with _session_lock:
            if name not in self._sessions:
                try:
                    self._sessions[name] = self._load(ort, name)
                except (KeyError, ValueError, *_ort_errors()) as e:  # a damaged graph, or another model's
                    raise ModelError(f"graph {self.paths[name]} does not fit {self.weights}: {_first_line(e)}") from None
            return self._sessions[name]

    def _load(self, ort, name: str):
        """The session of graph `name`, its initializers fed from the tensors."""
        graph = self.paths[name].read_bytes()
        names = initializer_names(graph)
        values = [ort.OrtValue.ortvalue_from_numpy(self.tensors[n.removeprefix("net.")]) for n in names]
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        _share_one_arena(ort)
        self._shrinking = _shrinking_options(ort)
        options.add_session_config_entry("session.use_env_allocators", "1")
        options.enable_mem_pattern = False
        options.add_external_initializers(names, values)
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self._fed.append(values)
        return session


def _ort_errors() -> tuple[type[Exception], ...]:
    """ONNX Runtime's exceptions for a model it cannot load (plain Exceptions of its own)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as C

    return C.Fail, C.InvalidArgument, C.InvalidProtobuf, C.InvalidGraph, C.RuntimeException, C.NotImplemented


def _first_line(e: Exception) -> str:
    """An exception's message, its first line (a KeyError's is the key, quoted)."""
    return (str(e).splitlines() or [type(e).__name__])[0]
