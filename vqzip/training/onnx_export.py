"""The network's graphs exported to ONNX for the runtime (`vqzip.inference`), without their
weights: the weights stay in model.safetensors, once, under the model's hash.

    write_graphs(net, folder)   folder/graphs/<name>.onnx for each of `net.graphs()`; their sha256
    folder_net(folder)          the network of a model folder, its weights loaded
    add_graphs(folder)          the same for an existing model folder (shipped, or made by an
                                older vqzip), recorded in the manifest that lists it (if one does)

Each graph is exported with torch.onnx's TorchScript exporter (dynamo=False; no constant
folding, so no weight is folded into a new tensor), with dynamic batch, height and width.
Then every initializer becomes an external reference with no data, named as the model file's
tensor (`net.<state key>`); `vqzip.inference.onnx_graphs` feeds them from the model file at
load. An initializer that is not one of the network's tensors (renamed, or folded into a new
one by the exporter) fails the export. Needs torch and onnx (the `train` extra).
"""
from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path

from vqzip.errors import VqzError
from vqzip.fileio import write_atomic

OPSET = 17
WEIGHTS = "model.safetensors"  # where the external references point (the runtime feeds them from it)


def graph_bytes(net, name: str, example: tuple, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> bytes:
    """Graph `name` of `net.graphs()` as ONNX bytes without weights (see the module's text),
    traced on `example` (its inputs' tensors); VqzError for an initializer that is not one of
    net's tensors."""
    import onnx
    import torch

    class Graph(torch.nn.Module):  # the graph as a module holding the network as `net`: its tensors are named net.<key>
        def __init__(self):
            super().__init__()
            self.net = net
            self.fn = net.graphs()[name]

        def forward(self, *xs):
            return self.fn(*xs)

    axes = {n: {0: "batch", 2: f"{n}_height", 3: f"{n}_width"} for n in inputs + outputs}
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and slicing notes
        torch.onnx.export(Graph().eval(), example, buf, dynamo=False, do_constant_folding=False, opset_version=OPSET,
                          input_names=list(inputs), output_names=list(outputs), dynamic_axes=axes)
    model = onnx.load_from_string(buf.getvalue())
    known = {f"net.{k}" for k in net.state_dict()}
    for t in model.graph.initializer:
        if t.name not in known:
            raise VqzError(f"graph {name}: the exporter made tensor {t.name!r}, which is not one of the network's "
                           "(renamed or folded): it would not be fed from the model's weights")
        t.ClearField("raw_data")
        for data in ("float_data", "int32_data", "int64_data", "double_data"):
            t.ClearField(data)
        t.data_location = onnx.TensorProto.EXTERNAL
        del t.external_data[:]
        t.external_data.add(key="location", value=WEIGHTS)
    return model.SerializeToString()


def examples(net, size: int = 32) -> dict[str, object]:
    """A tensor for each input of the network's graphs, by name (`VQVAE2Config.graphs`), from a
    random image of size x size run through them (the codes' vectors: the latents unquantized)."""
    import torch

    fns = net.graphs()
    with torch.no_grad():
        x = torch.rand(1, 3, size, size) - 0.5
        h_h, h_b = fns["features"](x)
        (q_t,) = fns["latent_top"](h_b)
        (q_b,) = fns["latent_bottom"](h_b, q_t)
        (m,) = fns["coarse"](q_t, q_b)
        env = {"x": x, "h_h": h_h, "h_b": h_b, "q_t": q_t, "q_b": q_b, "m": m}
        if "latent_fine" in fns:
            (env["q_f"],) = fns["latent_fine"](h_h, m)
    return env


def write_graphs(net, folder: Path) -> dict[str, str]:
    """folder/graphs/<name>.onnx for each graph of `net` (an architecture's nn.Module with its
    weights, those of folder's model.safetensors); returns each graph's sha256 by name."""
    from vqzip import zoo

    net = net.eval()
    env = examples(net)
    out = folder / zoo.GRAPHS
    out.mkdir(parents=True, exist_ok=True)
    digests = {}
    for name, (inputs, outputs) in net.cfg.graphs().items():
        data = graph_bytes(net, name, tuple(env[i] for i in inputs), inputs, outputs)
        write_atomic(out / f"{name}.onnx", data, force=True)
        digests[name] = hashlib.sha256(data).hexdigest()
    return digests


def folder_net(folder: str | Path):
    """The network (an architecture's nn.Module, its weights loaded) of the model in `folder`
    (config.json and model.safetensors, as export writes them, or as vqzip 0.2 wrote them); a
    VqzError naming the file for a folder that holds no readable model."""
    import torch
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from vqzip import zoo

    folder = Path(folder)
    try:
        cfg = json.loads((folder / "config.json").read_text())
        tensors = load_file(str(folder / WEIGHTS))
    except (OSError, ValueError) as e:
        raise VqzError(f"{folder} holds no readable model: {e}") from None
    except SafetensorError as e:  # a damaged model file: not an OSError
        raise VqzError(f"{folder / WEIGHTS} is damaged: {str(e).splitlines()[0]}") from None
    if "vqvae.enc_b.0.weight" in tensors:
        tensors = zoo.from_v02(tensors)
    net, _ = zoo.build(cfg)
    net.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in tensors.items() if k.startswith("net.")})
    return net


def add_graphs(folder: str | Path) -> tuple[dict[str, str], Path | None]:
    """Write the graphs of the model in `folder` (`write_graphs`), and record their sha256 in the
    manifest.json beside it where that lists the folder (`graphs_sha256`), so the model runs
    without torch. Returns each graph's sha256 by name and the manifest that now records them
    (None where no manifest beside the folder lists it: a model loaded by name then does not use
    them). A VqzError naming the file for a folder that holds no readable model."""
    folder = Path(folder)
    digests = write_graphs(folder_net(folder), folder)
    path = folder.parent / "manifest.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    entries = [e for e in manifest.get("models", {}).values() if e.get("folder") == folder.name]
    if not entries:
        return digests, None
    for entry in entries:
        entry["graphs_sha256"] = digests
    write_atomic(path, (json.dumps(manifest, indent=2) + "\n").encode(), force=True)
    return digests, path
