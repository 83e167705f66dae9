"""vqzip: a learned image codec."""

__version__ = "0.2.0"
