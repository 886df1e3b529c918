"""The models the cost plans (``t4_plans``) run, at a profile's sizes: for each key, the forward call of one plan
item, built from the chapters' recipes on the caller's device (``t4_cost.model_cost`` counts it on the meta
device)."""

from __future__ import annotations

from typing import Callable

import torch

from ..course.profiles import Profile
from ..data.captions import MAX_TOKENS
from ..models.classifier import Classifier
from ..models.dit import DiT
from ..models.ldm import LatentDenoiser
from ..models.mlp import MLPConfig, MLPDenoiser
from ..models.unet import UNet
from ..models.vae import VAE, VAEConfig
from ..recipes.ch02_vae import vae_recipe
from ..recipes.ch03_ddpm import ddpm_recipe, unet_config
from ..recipes.ch05_cfg import classifier_config, classifier_recipe, noisy_classifier_recipe
from ..recipes.ch06_ldm import ldm_config, ldm_recipe
from ..recipes.ch07_dit import SIZES as DIT_SIZES
from ..recipes.ch07_dit import dit_config, dit_recipe, unet_config as latent_unet_config, unet_recipe
from ..recipes.ch08_flow import fm_recipe

_long = lambda b: torch.zeros(b, dtype=torch.long)  # noqa: E731
_img = lambda b, c=3, s=32: torch.zeros(b, c, s, s)  # noqa: E731


def _vae(p: Profile, **overrides) -> VAE:
    return VAE(VAEConfig(**{**vae_recipe(p)["model"], **overrides}))


def _latent(b: int, p: Profile) -> torch.Tensor:
    return torch.zeros(b, *_vae(p).config.latent_shape())


def _ldm(p: Profile) -> LatentDenoiser:
    return LatentDenoiser(ldm_config(ldm_recipe(p), _vae(p).config.latent_shape()))


# key -> ((batch, profile) -> (callable, args)): the forward call each plan item runs, at the profile's sizes,
# built on the caller's device
MODELS: dict[str, Callable[[int, Profile], tuple[Callable, tuple]]] = {
    "mlp": lambda b, p: (MLPDenoiser(MLPConfig(**fm_recipe(p, "swiss_roll")["mlp"])).eval(),
                      (torch.zeros(b, 2), _long(b))),
    "vae": lambda b, p: (_vae(p).eval(), (_img(b),)),
    "vae_16x16": lambda b, p: (_vae(p, channel_mult=(1, 2)).eval(), (_img(b),)),
    "vae_encode": lambda b, p: (_vae(p).eval().encode, (_img(b),)),
    "vae_decode": lambda b, p: (_vae(p).eval().decode, (torch.zeros(b, *_vae(p).config.latent_shape()),)),
    "unet": lambda b, p: (UNet(unet_config(ddpm_recipe(p))).eval(), (_img(b), _long(b))),
    "unet_cond": lambda b, p: (UNet(unet_config(ddpm_recipe(p), num_classes=10)).eval(),
                            (_img(b), _long(b), _long(b))),
    "classifier": lambda b, p: (Classifier(classifier_config(classifier_recipe(p))).eval(), (_img(b),)),
    "noisy_classifier": lambda b, p: (Classifier(classifier_config(noisy_classifier_recipe(p))).eval(),
                                   (_img(b), _long(b))),
    "ldm": lambda b, p: (_ldm(p).eval(), (torch.zeros(b, *_vae(p).config.latent_shape()), _long(b),
                                      torch.ones(b, MAX_TOKENS, dtype=torch.long))),
    **{f"dit_{s}": (lambda s: lambda b, p: (DiT(dit_config(dit_recipe(p, s))).eval(),
                                            (_latent(b, p), _long(b), _long(b))))(s) for s in DIT_SIZES},
    "unet_latent": lambda b, p: (UNet(latent_unet_config(unet_recipe(p))).eval(), (_latent(b, p), _long(b), _long(b))),
}
