"""vqzip: a learned image codec.

    import vqzip
    data = vqzip.compress("photo.png", quality=4)   # .vqz bytes
    image = vqzip.decompress(data)                  # a PIL image

Importing vqzip registers `.vqz` with Pillow (`vqzip.pillow_plugin`); the codec (numpy, ONNX
Runtime) is imported on first use, not on import. Torch is training's (`pip install 'vqzip[train]'`).
"""
from vqzip import pillow_plugin  # registers the format with Pillow
from vqzip.errors import FormatError, ModelError, VqzError, VqzWarning

__version__ = "0.3.0"

_API = ("compress", "decompress", "compress_file", "decompress_file", "compress_to_target", "levels")


def __getattr__(name: str):
    if name in _API:  # the API imports the codec and its engines: load it when first asked for
        from vqzip import api

        return getattr(api, name)
    raise AttributeError(f"module 'vqzip' has no attribute {name!r}")


__all__ = [*_API, "VqzError", "FormatError", "ModelError", "VqzWarning", "__version__", "pillow_plugin"]
