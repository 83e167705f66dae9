"""Training: phase I fits a network of `vqzip.models` on image crops; phase II fits one prior
(of a kind of `vqzip.priors`) per code map on the maps the trained network gives for the training images; export makes
the priors integer and packs a model folder with its card.

    vqzip train vqvae --data ../shared/data/train --out runs/base --steps 4000
    vqzip train prior --data ../shared/data/train --out runs/base --steps 3000
    vqzip train export --run runs/base --name vqz-base
    vqzip train snapshot --run runs/long --out runs/long-at-20k   # a long phase I as it stands

Every run is seeded and resumable: `<phase>-state.pt` in the run folder holds the step, the
model, the optimizer and the sampler's RNG, and a rerun of the same command continues from it.
The codec never imports this package.
"""
from vqzip.training.autoencoder import load_net, train_vqvae
from vqzip.training.card import write_card
from vqzip.training.export import check_ladder, export, fixed_point_priors, register, set_ladder, validate
from vqzip.training.loop import TrainConfig, lr_at, snapshot
from vqzip.training.priors import load_priors, prior_configs, train_prior

__all__ = ["TrainConfig", "export", "fixed_point_priors", "load_net", "load_priors", "prior_configs", "register",
           "snapshot", "train_prior", "train_vqvae", "validate", "write_card"]
