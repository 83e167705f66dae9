"""The hierarchical VQ-VAE as the codec runs it: its graphs (ONNX Runtime or torch, the same
functions: `VQVAE2Config.graphs`) composed with the codebooks in numpy. Numpy in, numpy
out; the contract the codec, RDO and training's validation use:

- `STRIDE`, `maps` (`MapSpec`s in coding order), `quantizers` (one `LatentCodebooks` per latent);
- `normalize(x)`: uint8-range pixels (B, 3, H, W) -> the model's input (float32);
- `features(x)`, then `latent(index, feats, coarser)`: the vectors a latent quantizes, given
  the coarser latents' code maps;
- `decode(codes)`: code maps (a prefix of `maps` past the first latent's) -> normalized image;
  a skippable map's positions holding its OUT token (num_codes) decode as a zero vector; a
  lattice fine map (`MapSpec.channels` symbols per position) at a rate anchor (`anchor=`), its
  codes from `quantizers[2].residual_indices(latent(2, ...), anchor=...)`;
- `decode_preview(top)`: the preview map alone -> the image at 1/preview.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from vqzip.inference.codebooks import LatentCodebooks
from vqzip.models.configs import VQVAE2Config

Graphs = Callable[..., tuple[np.ndarray, ...]]  # graphs(name, *arrays) -> outputs


def features_of(net, pixels: np.ndarray) -> tuple[np.ndarray, ...]:
    """(h, w, 3) uint8 rows of an image -> `net.features` of them: the pixels become floats
    here, one tile of an image at a time."""
    return net.features(net.normalize(pixels.transpose(2, 0, 1)[None]))


class VQVAE2Network:
    def __init__(self, cfg: VQVAE2Config, graphs: Graphs, quantizers: list[LatentCodebooks]):
        self.cfg, self.graphs, self.quantizers = cfg, graphs, quantizers
        self.STRIDE = cfg.STRIDE
        self.maps = cfg.maps()

    @staticmethod
    def normalize(x: np.ndarray) -> np.ndarray:
        """uint8-range (B, 3, H, W) -> model input range, float32 (as the torch module's `normalize`)."""
        x = np.asarray(x, np.float32, order="C")  # a transposed image's view made contiguous once, as floats
        return x / np.float32(255.0) - np.float32(0.5)

    def features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalized x (B, 3, H, W) -> what every latent is computed from: the encoder's
        features at 1/2 and at 1/4 resolution."""
        return self.graphs("features", x)

    def latent(self, index: int, feats: tuple[np.ndarray, np.ndarray], coarser: list[np.ndarray]) -> np.ndarray:
        """The vectors latent `index` quantizes (B, D, h, w), from `features`, given the code
        maps (B, h', w') of the coarser latents, in coding order."""
        h_h, h_b = feats
        if index == 0:
            return self.graphs("latent_top", h_b)[0]
        if index == 1:
            return self.graphs("latent_bottom", h_b, self.quantizers[0].lookup(coarser[:1]))[0]
        return self.graphs("latent_fine", h_h, self._coarse(coarser))[0]

    def decode(self, codes: list[np.ndarray], anchor: float | None = None) -> np.ndarray:
        """Code maps (B, h, w) (a prefix of `maps` from the first bottom stage on) -> normalized
        reconstruction (B, 3, H, W). Fine positions holding fine_codes (the priors' OUT token)
        are skipped: their fine vectors are zero. A lattice fine map (B, C, h, w) decodes at its
        rate anchor `anchor` (`vqzip.inference.codebooks.LatticeCodebook`)."""
        m = self._coarse(codes)
        if not self.cfg.fine_stages:
            return m
        fine = codes[1 + self.cfg.bottom_stages :]
        if not fine:
            return self.graphs("synthesis_coarse", m)[0]  # q_f zero: the same pixels, a quarter less time
        if self.cfg.fine_quantizer is not None:
            if anchor is None:
                raise ValueError("a lattice fine map decodes at a rate anchor: none given")
            return self.graphs("synthesis", m, self.quantizers[2].lookup(fine, anchor=anchor))[0]
        skipped = fine[0] >= self.cfg.fine_codes  # OUT: a block the file skips (`vqzip.fine_skip`)
        q_f = self.quantizers[2].lookup([np.minimum(c, self.cfg.fine_codes - 1) for c in fine])
        if skipped.any():
            np.copyto(q_f, 0, where=skipped[:, None])  # ~10x faster than a broadcast mask's indexing
        return self.graphs("synthesis", m, q_f)[0]

    def decode_preview(self, top: np.ndarray) -> np.ndarray:
        """The preview map's codes, top (B, h, w) -> normalized preview (B, 3, 2h, 2w): the image
        at 1/4 resolution (`maps[0].preview`)."""
        return self.graphs("preview", self.quantizers[0].lookup([top]))[0]

    def _coarse(self, codes: list[np.ndarray]) -> np.ndarray:
        """`coarse` of the top and bottom maps among codes: the image, or with a fine latent the
        decoder's 1/2-resolution features."""
        q_b = self.quantizers[1].lookup(codes[1 : 1 + self.cfg.bottom_stages])
        return self.graphs("coarse", self.quantizers[0].lookup(codes[:1]), q_b)[0]
