"""The networks' configs and the code maps they imply, without torch: what the codec, the zoo and
the runtime need to know of a model, read from config.json's `net`; the torch modules
(`vqzip.models.vqvae2`, the quantizers) are built from these same dataclasses.

Quantizer kinds are named in `net` as `"quantizer": {"kind": NAME, ...its fields}`; absent, the
EMA VQ ("vq"), whose fields (`commitment`, `decay`, `rate`) sit in `net` itself as they did
before kinds existed, so the shipped configs, their digests and their weights read as they are.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from math import isqrt

from vqzip.models.spec import MapSpec
from vqzip.priors.gaussian import GAIN_BITS  # the units of the lattice's integer log2 gains: its prior's

DEFAULT_QUANTIZER = "vq"  # the kind of a network config that names none


@dataclass(frozen=True)
class VQConfig:
    """The settings a network config gives its EMA VQs (the "vq" quantizer kind, `vqzip.models.quantizers`)."""
    commitment: float = 0.25  # beta of the VQ-VAE paper
    decay: float = 0.99  # EMA of counts and sums, as in VQ-VAE-2
    rate: float = 0.0  # weight of the code length in training's assignment; 0: nearest code

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProductConfig:
    """The "product" kind's settings (`vqzip.models.product_vq`)."""
    commitment: float = 0.25  # beta of the VQ-VAE paper
    decay: float = 0.99  # of both halves' EMA codebooks

    def to_dict(self) -> dict:
        return asdict(self)


ANCHOR_STEPS = 256  # a fractional anchor is read in steps of 1/ANCHOR_STEPS


@dataclass(frozen=True)
class LatticeConfig:
    """The "lattice" kind's settings (`vqzip.models.lattice`): a fine latent of `channels`
    scalar-quantized channels, each value a symbol in 0..2L (L = `max_symbol`), its step set by
    a learned per-channel gain of each anchor (`anchors`: the rate-distortion multiplier lambda
    each anchor's gains are trained for, in increasing order)."""
    channels: int = 8
    max_symbol: int = 31
    anchors: tuple[float, ...] = (0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256)

    def __post_init__(self):
        object.__setattr__(self, "anchors", tuple(float(a) for a in self.anchors))  # JSON gives a list
        if len(self.anchors) < 2 or any(b <= a for a, b in zip(self.anchors, self.anchors[1:])):
            raise ValueError(f"a lattice needs two or more increasing anchors, not {self.anchors}")
        if self.channels < 1 or self.max_symbol < 1:
            raise ValueError(f"a lattice needs a channel and a symbol past 0 (channels {self.channels}, "
                             f"max_symbol {self.max_symbol})")

    @property
    def num_codes(self) -> int:
        """The alphabet of each value: -L..L offset by L."""
        return 2 * self.max_symbol + 1

    def to_dict(self) -> dict:
        return {"channels": self.channels, "max_symbol": self.max_symbol, "anchors": list(self.anchors)}

    def fixed_gains(self, log2_gain) -> list[list[int]]:
        """Trained float log2 gains (anchors x channels, any nested sequence of floats, a float32
        tensor's values) -> the integers the prior and the codec use, in units of 2**-GAIN_BITS:
        round half to even of value * 2**GAIN_BITS, exact on every machine (a power of two
        scales a float exactly)."""
        rows = [[round(float(v) * (1 << GAIN_BITS)) for v in row] for row in log2_gain]
        if len(rows) != len(self.anchors) or any(len(r) != self.channels for r in rows):
            raise ValueError(f"log2 gains of {len(rows)} anchors do not fit a lattice of {len(self.anchors)} "
                             f"anchors and {self.channels} channels")
        return rows

    def anchor_position(self, anchor: float) -> tuple[int, int]:
        """A (fractional) anchor -> (lo, r): it lies r / ANCHOR_STEPS of the way from anchor lo
        to lo + 1 (0 <= r <= ANCHOR_STEPS); ValueError outside 0..anchors-1."""
        if not 0 <= anchor <= len(self.anchors) - 1:
            raise ValueError(f"anchor {anchor} is outside 0..{len(self.anchors) - 1}")
        steps = round(anchor * ANCHOR_STEPS)
        lo = min(steps // ANCHOR_STEPS, len(self.anchors) - 2)
        return lo, steps - lo * ANCHOR_STEPS

    def gains_at(self, fixed: list[list[int]], anchor: float) -> tuple[list[int], list[float]]:
        """The integer log2 gains of a (fractional) anchor, log-linear between the two anchors
        about it (floor of the integer interpolation: exact everywhere), and the float gains
        2**(g / 2**GAIN_BITS) the encoder and decoder scale by, from the same integers."""
        lo, r = self.anchor_position(anchor)
        ints = [a + (b - a) * r // ANCHOR_STEPS for a, b in zip(fixed[lo], fixed[lo + 1])]
        return ints, [2.0 ** (g / (1 << GAIN_BITS)) for g in ints]


QUANTIZER_CONFIGS: dict[str, type] = {"vq": VQConfig, "product": ProductConfig, "lattice": LatticeConfig}


def product_factors(num_codes: int, dim: int) -> tuple[int, int]:
    """A product quantizer's two codebook sizes (a, b), a · b = num_codes, a the largest factor
    up to its square root (16: 4 · 4; 512: 16 · 32); a code is i · b + j. ValueError for a
    prime, or vectors of fewer than two dimensions (the halves are dim // 2 and the rest)."""
    a = max(f for f in range(1, isqrt(num_codes) + 1) if num_codes % f == 0)
    if a == 1 or dim < 2:
        raise ValueError(f"a product of two codebooks needs a number of codes with a factor (not {num_codes}) "
                         f"and vectors of two dimensions or more (not {dim})")
    return a, num_codes // a


def quantizer_kind(name: str) -> type:
    """The config class of the quantizer kind of that name; ValueError naming the known ones for another."""
    if name not in QUANTIZER_CONFIGS:
        raise ValueError(f"unknown quantizer kind {name!r}; known: {', '.join(sorted(QUANTIZER_CONFIGS))}")
    return QUANTIZER_CONFIGS[name]


def quantizer_name(cfg) -> str:
    """The name of the kind whose config `cfg` is."""
    for name, cls in QUANTIZER_CONFIGS.items():
        if type(cfg) is cls:
            return name
    raise ValueError(f"{type(cfg).__name__} is the config of no registered quantizer kind")


def config_from_net(net: dict) -> tuple[object, dict]:
    """A network config dict (config.json's `net`) -> its quantizer config and its other fields:
    the `quantizer` entry ({"kind": name, fields}), or where there is none the default kind's
    config from the fields of its names (those absent take their defaults). ValueError or
    TypeError where it is not one."""
    rest = dict(net)
    if "quantizer" in rest:
        d = dict(rest.pop("quantizer"))
        return quantizer_kind(d.pop("kind", DEFAULT_QUANTIZER))(**d), rest
    names = {f.name for f in fields(VQConfig)}
    return VQConfig(**{k: rest.pop(k) for k in list(rest) if k in names}), rest


def config_to_net(cfg) -> dict:
    """A quantizer config's fields in a network config dict: the default kind's flat (as before
    kinds existed), another's as {"quantizer": {"kind": name, fields}}."""
    name = quantizer_name(cfg)
    return cfg.to_dict() if name == DEFAULT_QUANTIZER else {"quantizer": {"kind": name, **cfg.to_dict()}}


@dataclass(frozen=True)
class VQVAE2Config:
    """The hierarchical VQ-VAE's config (`vqzip.models.vqvae2`)."""
    channels: int = 128
    code_dim: int = 64
    top_codes: int = 512
    bottom_codes: int = 512
    res_blocks: int = 2
    decoder_res_blocks: int = 3  # the decoder carries the quality; give it a little more depth
    preview: float = 0.5  # weight of the preview head's loss (1/4-resolution image from top codes)
    bottom_stages: int = 1  # residual VQ stages at the bottom latent
    padding: str = "zeros"  # of the convolutions: "replicate" keeps image borders (and tiny images) from reading as gray
    fine_stages: int = 0  # residual VQ stages of a fine latent at 1/2 resolution; 0: none
    fine_codes: int = 512
    fine_res_blocks: int = 1
    # every latent's quantizer: a config of a kind of `vqzip.models.quantizers` (the EMA VQ's
    # commitment, decay and rate by default)
    quantizer: object = field(default_factory=VQConfig)
    # the fine latent's own quantizer, a `LatticeConfig`: C channels of scalar symbols at 1/2
    # resolution, from a deeper analysis (3x3 conv 2h->h, ReLU, 3x3 h->h, ReLU, 3x3 h->C, h =
    # channels / 2); None: the fine latent is `quantizer`'s, as before (absent from config.json)
    fine_quantizer: object = None

    STRIDE = 8  # image pixels per top code, each way: images are padded to a multiple of it

    def __post_init__(self):
        if self.fine_stages and self.bottom_stages != 1:
            raise ValueError("a fine latent follows a bottom latent of one stage")
        if isinstance(self.quantizer, LatticeConfig):
            raise ValueError("the lattice quantizes the fine latent only: name it as fine_quantizer")
        if self.fine_quantizer is not None:
            if not isinstance(self.fine_quantizer, LatticeConfig):
                raise ValueError(f"fine_quantizer takes the lattice kind, not {quantizer_name(self.fine_quantizer)!r}")
            if self.fine_stages != 1 or self.fine_codes != self.fine_quantizer.num_codes:
                raise ValueError(f"a lattice fine latent is one map (fine_stages 1, not {self.fine_stages}) of "
                                 f"{self.fine_quantizer.num_codes} symbols (fine_codes, not {self.fine_codes})")

    @classmethod
    def from_dict(cls, d: dict) -> VQVAE2Config:
        """The config of config.json's `net` dict (its quantizer read by `config_from_net`, a
        fine_quantizer as {"kind": name, fields}); TypeError or ValueError where it is not one."""
        quantizer, rest = config_from_net(d)
        if "fine_quantizer" in rest:
            fine = dict(rest.pop("fine_quantizer"))
            rest["fine_quantizer"] = quantizer_kind(fine.pop("kind"))(**fine)
        return cls(**rest, quantizer=quantizer)

    def to_dict(self) -> dict:
        """`from_dict`'s inverse: the default quantizer's fields flat, as before kinds existed,
        and fine_quantizer only where there is one."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("quantizer", "fine_quantizer")}
        if self.fine_quantizer is not None:
            d["fine_quantizer"] = {"kind": quantizer_name(self.fine_quantizer), **self.fine_quantizer.to_dict()}
        return {**d, **config_to_net(self.quantizer)}

    def latents(self) -> list[tuple[int, int]]:
        """(maps, num_codes) of each latent, in coding order: top, bottom, and fine if any."""
        return [(1, self.top_codes), (self.bottom_stages, self.bottom_codes)] + (
            [(self.fine_stages, self.fine_codes)] if self.fine_stages else [])

    def latent_quantizers(self) -> list:
        """The quantizer config of each latent, in coding order (`latents`' order)."""
        return [self.quantizer, self.quantizer] + (
            [self.fine_quantizer or self.quantizer] if self.fine_stages else [])

    def maps(self) -> list[MapSpec]:
        """The code maps, in coding order, with their roles: "top" (decodes alone to a preview at
        1/4), "bottom", "bottom.1", ..., then "fine", "fine.1", ... Each map's prior sees every
        map before it. Skipped positions zero the fine vectors of every stage, so only a fine
        latent of one stage can be coded in blocks. A lattice fine map holds `channels` symbols
        per position (its codes (B, C, H, W)), and is not skippable: its OUT token is not yet
        defined."""
        maps = [MapSpec("top", 0, 0, self.STRIDE, self.top_codes, (), preview=4)] + [
            MapSpec("bottom" if s == 0 else f"bottom.{s}", 1, s, 4, self.bottom_codes, tuple(range(s + 1)))
            for s in range(self.bottom_stages)]
        before = len(maps)
        lattice = self.fine_quantizer
        return maps + [MapSpec("fine" if s == 0 else f"fine.{s}", 2, s, 2, self.fine_codes, tuple(range(before + s)),
                               skippable=self.fine_stages == 1 and lattice is None,
                               channels=1 if lattice is None else lattice.channels)
                       for s in range(self.fine_stages)]


    def graphs(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """The graphs the codec runs (`VQVAE2.graphs`, exported by `vqzip.training.onnx_export`,
        composed by `vqzip.inference.network`): name -> (inputs, outputs), in order. x:
        normalized pixels; h_h, h_b: the encoder's features at 1/2 and 1/4; z_*: a latent's
        vectors before quantization; q_*: the vectors of its codes; m: `coarse`'s output (the
        image, or with a fine latent the decoder's 1/2-resolution features). With a lattice fine
        latent, z_f is its float values y (B, C, H/2, W/2) and q_f their decode q / g."""
        out = {"features": (("x",), ("h_h", "h_b")), "latent_top": (("h_b",), ("z_t",)),
               "latent_bottom": (("h_b", "q_t"), ("z_b",)), "coarse": (("q_t", "q_b"), ("m",)),
               "preview": (("q_t",), ("preview",))}
        if self.fine_stages:
            out.update(latent_fine=(("h_h", "m"), ("z_f",)), synthesis=(("m", "q_f"), ("x_hat",)),
                       synthesis_coarse=(("m",), ("x_hat",)))
        return out


ARCH_CONFIGS: dict[str, type] = {"vqvae2": VQVAE2Config}


def arch_config(arch: str, net: dict):
    """The config of a registered architecture from config.json's `net`; ValueError for an
    unknown architecture, TypeError or ValueError for a config that is not one."""
    if arch not in ARCH_CONFIGS:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCH_CONFIGS))}")
    return ARCH_CONFIGS[arch].from_dict(net)
