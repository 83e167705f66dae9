"""Exceptions the command line turns into one-line messages and exit code 1."""


class VqzError(Exception):
    """Base of every error vqzip reports to a user."""


class FormatError(VqzError, ValueError):
    """The bytes are not a valid .vqz file, or are damaged."""


class ModelError(VqzError):
    """A model is missing, unknown, or its weights do not match the manifest."""


class VqzWarning(UserWarning):
    """Something a user should know about the image they gave (e.g. reduced to 8 bits)."""
