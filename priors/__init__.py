"""Priors over code maps, as registered kinds (`vqzip.priors.registry`): each a float module for
training, its exact integer form the codec walks, its scan order and its calibration."""
from vqzip.priors.registry import (DEFAULT, KINDS, ExactPrior, FloatPrior, PriorKind, calibrate, config_from_dict,
                                   config_to_dict, exact_prior, float_prior, kind, kind_of)

__all__ = ["DEFAULT", "KINDS", "ExactPrior", "FloatPrior", "PriorKind", "calibrate", "config_from_dict", "config_to_dict",
           "exact_prior", "float_prior", "kind", "kind_of"]
