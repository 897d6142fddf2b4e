"""Latent layers on the unit hypersphere: von Mises-Fisher and Power Spherical.

With a fixed concentration k and the uniform prior on the sphere, the KL term
is a constant of the model, so the posterior cannot collapse to the prior
(Xu & Durrett 2018). With `concentration="learned"` the layer predicts a
per-example k (the paper's Section 7).
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tf_vmfvae import config as config_lib
from tf_vmfvae import errors
from tf_vmfvae.latent import base
from tf_vmfvae.latent import kl as kl_lib
from tf_vmfvae.latent import sampling

tfd = tfp.distributions

LEARNED = "learned"
# vMF samplers: Wood's rejection sampler (TFP), or the loop-free inverse-CDF
# table of a fixed concentration (`tf_vmfvae.latent.sampling`).
SAMPLERS = config_lib.VMF_SAMPLERS


class _SphericalLatent(base.LatentLayer):
  """Shared code of the two spherical latents; see the subclasses."""

  is_spherical = True

  # Set by subclasses: a tfd class taking (mean_direction, concentration),
  # and its KL to the uniform prior, f(dim, concentration) -> float | tensor.
  _distribution = None
  _kl_to_uniform = None

  def __init__(self, latent_dim, concentration=80.0, min_concentration=1.0,
               max_concentration=500.0, seed=None, **kwargs):
    super().__init__(latent_dim, seed=seed, **kwargs)
    if concentration != LEARNED:
      if (isinstance(concentration, bool)
          or not isinstance(concentration, (int, float))
          or not 0.0 < concentration < math.inf):
        raise errors.InvalidValueError(
            "`concentration` must be a finite number > 0 or "
            f"\"{LEARNED}\", got {concentration!r}.")
      concentration = float(concentration)
    for name, value in (("min_concentration", min_concentration),
                        ("max_concentration", max_concentration)):
      if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise errors.InvalidValueError(f"`{name}` must be a number > 0, got {value!r}.")
    if not min_concentration < max_concentration:
      raise errors.InvalidValueError(
          "`min_concentration` must be < `max_concentration`, got "
          f"{min_concentration!r} and {max_concentration!r}.")
    self.concentration = concentration
    self.min_concentration = float(min_concentration)
    self.max_concentration = float(max_concentration)

    self.direction_dense = keras.layers.Dense(
        latent_dim, dtype=self.dtype_policy, name="direction")
    self.concentration_dense = None
    if self.learned:
      self.concentration_dense = keras.layers.Dense(
          1, dtype=self.dtype_policy, name="concentration")
      self._constant_kl = None
    else:
      self._constant_kl = self._kl_to_uniform(latent_dim, concentration)

  @property
  def learned(self):
    return self.concentration == LEARNED

  @property
  def constant_kl(self):
    """The fixed KL in nats (float64 closed form), or None when learned."""
    return self._constant_kl

  def build(self, input_shape):
    self.direction_dense.build(input_shape)
    if self.concentration_dense is not None:
      self.concentration_dense.build(input_shape)

  def posterior_parameters(self, inputs):
    direction = tf.cast(self.direction_dense(inputs), tf.float32)
    mean_direction = tf.math.l2_normalize(direction, axis=-1)
    if self.learned:
      raw = tf.cast(self.concentration_dense(inputs), tf.float32)[..., 0]
      # min + softplus starts inside the range (min + 0.69 at raw = 0), where
      # the gradient reaches k; only the upper end is clipped.
      concentration = tf.minimum(self.min_concentration + tf.math.softplus(raw),
                                 self.max_concentration)
    else:
      concentration = tf.fill(tf.shape(mean_direction)[:-1], self.concentration)
    return {"mean_direction": mean_direction, "concentration": concentration}

  def posterior(self, parameters):
    return self._distribution(
        mean_direction=parameters["mean_direction"],
        concentration=parameters["concentration"])

  def prior(self):
    return tfd.SphericalUniform(self.latent_dim, dtype=tf.float32)

  def prior_log_prob(self, z):
    # The uniform density is a constant: -log |S^{d-1}|.
    return tf.fill(tf.shape(z)[:-1],
                   tf.constant(-kl_lib.log_sphere_area(self.latent_dim), z.dtype))

  def kl_divergence(self, parameters):
    concentration = parameters["concentration"]
    if not self.learned:
      return tf.fill(tf.shape(concentration), tf.constant(self._constant_kl, tf.float32))
    kl = self._kl_to_uniform(self.latent_dim, tf.cast(concentration, tf.float64))
    return tf.cast(kl, tf.float32)

  def mode(self, parameters):
    return parameters["mean_direction"]

  def prior_coordinate_variance(self):
    # Uniform on S^{d-1}: E[z_i] = 0 and the d values E[z_i^2] sum to 1.
    return 1.0 / self.latent_dim

  def get_config(self):
    config = super().get_config()
    config.update({"concentration": self.concentration,
                   "min_concentration": self.min_concentration,
                   "max_concentration": self.max_concentration})
    return config


@keras.saving.register_keras_serializable(package="tf_vmfvae")
class VonMisesFisherLatent(_SphericalLatent):
  """A von Mises-Fisher latent on S^{d-1} with a uniform prior.

  Projects the encoder features to a direction and l2-normalizes it into the
  mean direction mu. In training, z ~ vMF(mu, k) is drawn with TFP's
  `VonMisesFisher` (Wood's rejection sampler: gradients reach mu through
  z = w mu + sqrt(1 - w^2) v). At inference it returns mu unless `sample=True`.
  The KL to the uniform prior is added with `add_loss` and reported as the
  `kl` metric. With a fixed k it is the constant `constant_kl`, computed once
  in float64 by `tf_vmfvae.latent.vmf_kl_to_uniform`.

  Args:
    latent_dim: int >= 2. Dimension d of z (z lies on S^{d-1} in R^d).
    concentration: float > 0, the fixed k (paper: 80 for the Inputless
      PTB decoder, 35 for the Standard one, 100 for NVDM d=25), or
      "learned": k = min(min_concentration + softplus(Dense(h)),
      max_concentration) per example, with a KL differentiable in k.
    min_concentration, max_concentration: floats, the clipping range of a
      learned k. Unused with a fixed k.
    seed: int or None, the sampler's seed.
    sampler: "wood" (TFP's rejection sampler, a `tf.while_loop`) or, for a
      fixed k, "table": the loop-free inverse-CDF sampler of
      `tf_vmfvae.latent.sampling` (static shapes, XLA-compatible).
    **kwargs: base `keras.layers.Layer` arguments.

  Call arguments:
    inputs: float tensor [batch, features].
    training: bool; sample in training, mean direction otherwise.
    sample: bool or None; overrides `training` for that choice.
    num_samples: int or None; with a sample, draw this many (a leading axis).

  Example:
  >>> layer = VonMisesFisherLatent(latent_dim=50, concentration=80.0, seed=1)
  >>> z = layer(tf.random.normal([4, 400]), training=True)
  >>> z.shape
  TensorShape([4, 50])
  >>> round(layer.constant_kl, 2)
  19.52

  References:
    Xu & Durrett (2018), https://arxiv.org/abs/1808.10805.
    Davidson et al. (2018), https://arxiv.org/abs/1804.00891.
    Wood (1994), Simulation of the von Mises Fisher distribution.
  """

  _distribution = tfd.VonMisesFisher

  _kl_to_uniform = staticmethod(kl_lib.vmf_kl_to_uniform)

  def __init__(self, latent_dim, concentration=80.0, min_concentration=1.0,
               max_concentration=500.0, seed=None, sampler="wood", **kwargs):
    super().__init__(latent_dim, concentration=concentration,
                     min_concentration=min_concentration,
                     max_concentration=max_concentration, seed=seed, **kwargs)
    if sampler not in SAMPLERS:
      raise errors.InvalidValueError(f"`sampler` must be one of {list(SAMPLERS)}, got {sampler!r}.")
    if sampler == "table" and self.learned:
      raise errors.InvalidValueError(
          "`sampler`=\"table\" needs a fixed `concentration`; a learned one "
          "is sampled with \"wood\".")
    self.sampler = sampler
    self._angle_table = (sampling.AngleTable(latent_dim, self.concentration)
                         if sampler == "table" else None)

  def sample(self, parameters, num_samples=None, seed=None):
    if self._angle_table is None:
      return super().sample(parameters, num_samples=num_samples, seed=seed)
    if seed is None:
      seed = tf.cast(self.seed_generator.next(), tf.int32)
    return sampling.sample(parameters["mean_direction"], self._angle_table, seed,
                           num_samples=num_samples)

  def get_config(self):
    config = super().get_config()
    config["sampler"] = self.sampler
    return config


@keras.saving.register_keras_serializable(package="tf_vmfvae")
class PowerSphericalLatent(_SphericalLatent):
  """A Power Spherical latent on S^{d-1} with a uniform prior.

  Same API as `VonMisesFisherLatent`, with TFP's `PowerSpherical`
  (De Cao & Aziz 2020): fully reparameterized, sampled without a rejection
  loop. Its k is on another scale than the vMF's: at d=50, k=80 the KL is
  12.06 nats against 19.52 for the vMF.

  Args:
    latent_dim: int >= 2.
    concentration: float > 0 or "learned".
    min_concentration, max_concentration: floats, range of a learned k.
    seed: int or None.
    **kwargs: base `keras.layers.Layer` arguments.

  Example:
  >>> layer = PowerSphericalLatent(latent_dim=50, concentration=80.0)
  >>> round(layer.constant_kl, 2)
  12.06

  References:
    De Cao & Aziz (2020), https://arxiv.org/abs/2006.04437.
  """

  _distribution = tfd.PowerSpherical

  _kl_to_uniform = staticmethod(kl_lib.power_spherical_kl_to_uniform)
