"""Latent layers: spherical (vMF, Power Spherical) and Gaussian, and KL math.

Example:
>>> from tf_vmfvae import latent
>>> layer = latent.VonMisesFisherLatent(latent_dim=50, concentration=80.0)
>>> round(latent.vmf_kl_to_uniform(50, 80.0), 2)
19.52
"""

from tf_vmfvae.latent import schedules
from tf_vmfvae.latent.base import batch_mean
from tf_vmfvae.latent.base import LatentLayer
from tf_vmfvae.latent.factory import KINDS
from tf_vmfvae.latent.factory import latent_config
from tf_vmfvae.latent.factory import make_latent
from tf_vmfvae.latent.gaussian import GaussianLatent
from tf_vmfvae.latent.kl import kappa_for_cosine
from tf_vmfvae.latent.kl import kappa_for_kl
from tf_vmfvae.latent.kl import mean_resultant_length
from tf_vmfvae.latent.kl import power_spherical_kl_to_uniform
from tf_vmfvae.latent.kl import vmf_kl_to_uniform
from tf_vmfvae.latent.spherical import PowerSphericalLatent
from tf_vmfvae.latent.spherical import VonMisesFisherLatent

__all__ = [
    "GaussianLatent",
    "KINDS",
    "kappa_for_cosine",
    "kappa_for_kl",
    "batch_mean",
    "LatentLayer",
    "latent_config",
    "PowerSphericalLatent",
    "VonMisesFisherLatent",
    "make_latent",
    "mean_resultant_length",
    "power_spherical_kl_to_uniform",
    "schedules",
    "vmf_kl_to_uniform",
]
