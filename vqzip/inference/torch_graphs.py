"""The network's graphs run as the torch module's own functions (`VQVAE2.graphs`): the torch
backend, the side-by-side reference of the ONNX one and what training evaluates a run with
before it has exported graphs. Needs torch (the `train` extra)."""
from __future__ import annotations

import numpy as np


class TorchGraphs:
    """graphs(name, *arrays) -> the graph's outputs as numpy arrays, from an architecture's
    nn.Module (its weights loaded). Convolutions run channels-last (~1.4x faster on CPU, the
    same codes on Kodak)."""

    def __init__(self, net):
        import torch

        self._torch = torch
        self.net = net.eval().to(memory_format=torch.channels_last)
        self._fns = self.net.graphs()

    def __call__(self, name: str, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        torch = self._torch
        with torch.no_grad():
            inputs = [torch.from_numpy(np.asarray(a, dtype=np.float32)).contiguous(memory_format=torch.channels_last)
                      for a in arrays]
            return tuple(t.numpy() for t in self._fns[name](*inputs))


def torch_network(net):
    """The codec's numpy network (`vqzip.inference.network`) of an architecture's nn.Module as
    it is (training's, before any export): its codebooks from its state, its graphs run by torch."""
    from vqzip.inference import network

    tensors = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    return network(net.ARCH, net.cfg, tensors, TorchGraphs(net))
