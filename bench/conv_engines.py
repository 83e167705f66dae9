"""One 3x3 convolution, 64 to 64 channels over 256x384 (the decoder's size at 1/2 resolution of a
Kodak image), in numpy (im2col and a BLAS matmul) against ONNX Runtime, both on one thread: what a
runtime without an inference engine (numpy alone, to fit issue 37's 150 MB) would pay per layer.

    python bench/conv_engines.py      # CPU seconds, median of --runs, alternating; their ratio
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from threadpoolctl import threadpool_limits

C, H, W = 64, 256, 384


def onnx_conv(w: np.ndarray):
    """A session running the convolution of weights w (C, C, 3, 3), padding 1, on one thread."""
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "conv",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, H, W])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [numpy_helper.from_array(w, "w")])
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(),
                                   options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"x": x})[0]


def numpy_conv(w: np.ndarray):
    """The same convolution in numpy: the 3x3 windows as columns, one matrix product."""
    flat = w.reshape(C, C * 9)

    def run(x: np.ndarray) -> np.ndarray:
        windows = np.lib.stride_tricks.sliding_window_view(np.pad(x[0], ((0, 0), (1, 1), (1, 1))), (3, 3), axis=(1, 2))
        return (flat @ np.ascontiguousarray(windows.transpose(0, 3, 4, 1, 2)).reshape(C * 9, H * W)).reshape(1, C, H, W)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, C, H, W), dtype=np.float32)
    w = rng.standard_normal((C, C, 3, 3), dtype=np.float32) * np.float32(0.05)
    engines = {"onnxruntime": onnx_conv(w), "numpy": numpy_conv(w)}
    seconds = {name: [] for name in engines}
    with threadpool_limits(1):
        a, b = (run(x) for run in engines.values())
        print(f"largest difference between the engines' outputs: {float(np.abs(a - b).max()):.2e}")
        for _ in range(args.runs):
            for name, run in engines.items():
                t = time.process_time()
                run(x)
                seconds[name].append(time.process_time() - t)
    med = {name: float(np.median(s)) for name, s in seconds.items()}
    for name, s in med.items():
        print(f"{name:12s} {s:.4f} CPU s (median of {args.runs})")
    print(f"numpy / onnxruntime: {med['numpy'] / med['onnxruntime']:.2f}")


if __name__ == "__main__":
    main()
