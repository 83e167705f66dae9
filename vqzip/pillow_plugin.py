"""`.vqz` as a Pillow format, registered on `import vqzip` as Pillow registers its own:

    >>> import vqzip
    >>> from PIL import Image
    >>> Image.open("samples/tiger.png").save("/tmp/tiger.vqz", quality=3)
    >>> Image.open("/tmp/tiger.vqz").size
    (481, 321)

Opening reads the header only (size and mode); the pixels are decoded on `load()`. As for
JPEG, `draft()` picks the fast preview (a quarter of the size each way, vqz-l3's) when the size
asked for fits in it; so does `thumbnail()`, which asks for twice the thumbnail's size (its
`reducing_gap`). Saving takes `quality=` (a vqzip quality level). Nothing but Pillow and the
container is imported until `draft()` or `load()` (the preview's size is the file's model's).
"""
from __future__ import annotations

from PIL import Image, ImageFile

from vqzip import container
from vqzip.container import FORMAT


def _accept(prefix: bytes) -> bool:
    return prefix.startswith(container.MAGIC)


class VqzImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "vqzip learned image codec"

    def _open(self) -> None:
        data = self.fp.read()
        header = container.unpack(data)[0]  # a damaged file raises vqzip's FormatError here
        self._header = header
        self._size = (header.width, header.height)
        self._mode = header.mode
        self.tile = [ImageFile._Tile(FORMAT, (0, 0, *self._size), 0, (False,))]

    def draft(self, mode: str | None, size: tuple[int, int] | None):
        """Decode the preview instead when `size` fits in it (the mode is kept as coded); the
        full decode if the file's model is not installed (`load()` then says so)."""
        if size is None or not self.tile or self.tile[0].args == (True,):
            return None
        from vqzip import codec
        from vqzip.errors import VqzError

        try:
            down = codec.preview_reduction(codec.model_for(self._header))
        except VqzError:
            return None
        small = container.preview_size(*self.size, down)
        if size[0] > small[0] or size[1] > small[1]:
            return None
        full = self.size
        self._size = small
        self.tile = [ImageFile._Tile(FORMAT, (0, 0, *small), 0, (True,))]
        return self.mode, (0, 0, full[0] / down, full[1] / down)


class VqzDecoder(ImageFile.PyDecoder):
    _pulls_fd = True

    def decode(self, buffer) -> tuple[int, int]:
        from vqzip import api

        self.fd.seek(0)
        image = api.decompress(self.fd.read(), preview=self.args[0])
        self.set_as_raw(image.tobytes(), image.mode)
        return -1, 0


def _save(im: Image.Image, fp, filename) -> None:
    from vqzip import api

    fp.write(api.compress(im, im.encoderinfo.get("quality")))


Image.register_open(FORMAT, VqzImageFile, _accept)
Image.register_decoder(FORMAT, VqzDecoder)
Image.register_save(FORMAT, _save)
Image.register_extension(FORMAT, ".vqz")
Image.register_mime(FORMAT, "image/x-vqz")
