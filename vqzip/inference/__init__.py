"""The networks as the codec runs them, without torch: graphs in ONNX Runtime (or, as the
reference, the torch module's own functions), codebooks in numpy.

    backend(name)                       "onnx" or "torch": the argument, else VQZIP_BACKEND, else onnx (`vqzip.backends`)
    network(arch, cfg, tensors, graphs) an architecture's numpy network (`network.VQVAE2Network`)
    features_of(net, pixels)            a network's features of uint8 pixels
    OnnxGraphs(paths, tensors, weights) the exported graphs, weights fed from the model's tensors
    TorchGraphs(net)                    the same graphs as torch functions (needs torch)
"""
from __future__ import annotations

import numpy as np

from vqzip.backends import BACKENDS, backend
from vqzip.inference.codebooks import latent_codebooks
from vqzip.inference.network import Graphs, VQVAE2Network, features_of
from vqzip.inference.onnx_graphs import OnnxGraphs

# Each architecture's numpy network and the tensor prefix of each latent's codebooks
NETWORKS = {"vqvae2": (VQVAE2Network, ("vq_t.", "vq_b.", "vq_f."))}

__all__ = ["BACKENDS", "NETWORKS", "OnnxGraphs", "backend", "features_of", "network"]


def network(arch: str, cfg, tensors: dict[str, np.ndarray], graphs: Graphs):
    """The numpy network of architecture `arch` and config `cfg` (`vqzip.models.configs`): its
    codebooks from `tensors` (the network's, by state key), its graphs run by `graphs`.
    KeyError for a missing tensor."""
    cls, prefixes = NETWORKS[arch]
    books = [latent_codebooks(q, maps, tensors, prefix)
             for q, (maps, _), prefix in zip(cfg.latent_quantizers(), cfg.latents(), prefixes)]
    return cls(cfg, graphs, books)
