"""Exceptions the command line turns into one-line messages and exit code 1 (2 for a
UsageError)."""


class VqzError(Exception):
    """Base of every error vqzip reports to a user."""


class FormatError(VqzError, ValueError):
    """The bytes are not a valid .vqz file, or are damaged."""


class ModelError(VqzError):
    """A model is missing, unknown, or its weights do not match the manifest."""


class UsageError(VqzError):
    """The options given cannot work together (the command line exits 2, as for bad usage)."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option  # the option at fault, e.g. "-c/--stdout"


class VqzWarning(UserWarning):
    """Something a user should know about the image they gave (e.g. reduced to 8 bits)."""
