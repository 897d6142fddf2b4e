"""Builds a latent layer from the short names the configs and flags use."""

import keras

from tf_vmfvae import config
from tf_vmfvae import errors
from tf_vmfvae.latent.gaussian import GaussianLatent
from tf_vmfvae.latent.spherical import LEARNED
from tf_vmfvae.latent.spherical import PowerSphericalLatent
from tf_vmfvae.latent.spherical import VonMisesFisherLatent

KINDS = config.LATENT_KINDS


def make_latent(kind, latent_dim, concentration=80.0, kl_schedule="constant",
                free_bits=0.0, min_concentration=1.0, max_concentration=500.0,
                seed=None, sampler="wood", name="latent"):
  """Returns the latent layer called `kind`, or None for "none" (no latent).

  Args:
    kind: one of "vmf", "vmf_learned", "power_spherical", "gaussian", "none".
    latent_dim: int >= 2.
    concentration: fixed k of the spherical latents.
    kl_schedule, free_bits: Gaussian KL annealing and floor.
    min_concentration, max_concentration: range of a learned k.
    seed: int or None.
    sampler: how a fixed-concentration "vmf" is sampled: "wood" or "table"
      (`tf_vmfvae.latent.sampling`); the other kinds take only "wood".
    name: the layer's name.

  Example:
  >>> make_latent("vmf", 50, concentration=35.0).constant_kl > 0
  True
  """
  if sampler != "wood" and kind != "vmf":
    raise errors.InvalidValueError(f"`sampler`={sampler!r} is for a fixed-concentration \"vmf\" "
                                   f"latent, not {kind!r}.")
  if kind == "vmf":
    return VonMisesFisherLatent(latent_dim, concentration=concentration, seed=seed,
                                sampler=sampler, name=name)
  if kind == "vmf_learned":
    return VonMisesFisherLatent(latent_dim, concentration=LEARNED,
                                min_concentration=min_concentration,
                                max_concentration=max_concentration, seed=seed, name=name)
  if kind == "power_spherical":
    return PowerSphericalLatent(latent_dim, concentration=concentration, seed=seed, name=name)
  if kind == "gaussian":
    return GaussianLatent(latent_dim, kl_schedule=kl_schedule, free_bits=free_bits,
                          seed=seed, name=name)
  if kind == "none":
    return None
  raise errors.InvalidValueError(f"`latent` must be one of {list(KINDS)}, got {kind!r}.")


def latent_config(model):
  """The latent arguments of a model built with `make_latent`, for get_config.

  A schedule object is serialized; names and numbers stay as they are.
  """
  schedule = model.kl_schedule
  if not isinstance(schedule, (str, int, float, dict)):
    schedule = keras.saving.serialize_keras_object(schedule)
  return {"latent": model.latent_kind, "latent_dim": model.latent_dim,
          "concentration": model.concentration, "kl_schedule": schedule,
          "free_bits": model.free_bits, "min_concentration": model.min_concentration,
          "max_concentration": model.max_concentration, "sampler": model.sampler}
