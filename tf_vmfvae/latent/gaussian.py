"""The Gaussian latent of Bowman et al. (2016) and Miao et al. (2016)."""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tf_vmfvae import errors
from tf_vmfvae.latent import base
from tf_vmfvae.latent import schedules

tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="tf_vmfvae")
class GaussianLatent(base.LatentLayer):
  """A diagonal Gaussian latent with a N(0, I) prior and an annealed KL.

  Mean and log-variance heads on the encoder features; in training
  z = mean + exp(log_variance / 2) * eps (reparameterized), at inference the
  mean unless `sample=True`. The analytic KL to N(0, I) is reported as the
  `kl` metric; the loss added with `add_loss` is

      weight(step) * sum_i max(mean_batch(KL_i), free_bits)

  where KL_i is the KL of dimension i, `weight` comes from `kl_schedule` and
  `step` counts this layer's training calls in a non-trainable variable
  (saved with the model, so the weight is right after a resume and under
  `tf.distribute`). With `free_bits=0` this is the plain batch-mean KL.

  Args:
    latent_dim: int >= 2. Dimension of z.
    kl_schedule: a `tf_vmfvae.latent.schedules.KLSchedule`, one of
      "constant", "linear", "sigmoid", "cyclical", or a number (a constant
      weight). Defaults to "constant" (weight 1: the true ELBO).
    free_bits: float >= 0. Per-dimension KL floor in nats (Kingma et al.
      2016); 0 disables it.
    seed: int or None, the sampler's seed.
    **kwargs: base `keras.layers.Layer` arguments.

  Call arguments:
    inputs: float tensor [batch, features].
    training: bool; sample in training, the mean otherwise.
    sample: bool or None; overrides `training` for that choice.
    num_samples: int or None; with a sample, draw this many (a leading axis).

  Example:
  >>> layer = GaussianLatent(latent_dim=32, kl_schedule="sigmoid")
  >>> z = layer(tf.random.normal([4, 400]), training=True)
  >>> z.shape
  TensorShape([4, 32])

  References:
    Bowman et al. (2016), https://arxiv.org/abs/1511.06349.
    Kingma et al. (2016), https://arxiv.org/abs/1606.04934 (free bits).
  """

  def __init__(self, latent_dim, kl_schedule="constant", free_bits=0.0,
               seed=None, **kwargs):
    super().__init__(latent_dim, seed=seed, **kwargs)
    if (isinstance(free_bits, bool) or not isinstance(free_bits, (int, float))
        or not 0.0 <= free_bits < math.inf):
      raise errors.InvalidValueError(f"`free_bits` must be a number >= 0, got {free_bits!r}.")
    self.kl_schedule = schedules.get(kl_schedule)
    self.free_bits = float(free_bits)
    self.mean_dense = keras.layers.Dense(
        latent_dim, dtype=self.dtype_policy, name="mean")
    self.log_variance_dense = keras.layers.Dense(
        latent_dim, dtype=self.dtype_policy, name="log_variance")

  def build(self, input_shape):
    self.mean_dense.build(input_shape)
    self.log_variance_dense.build(input_shape)
    # On-read synchronization: each replica counts its own calls, with no
    # cross-replica sync inside the forward pass. (An on-write variable's
    # `assign_add` there merges the replicas mid-step, and under
    # MirroredStrategy that skewed the KL's loss and halved its gradient.)
    self.step = keras.Variable(
        initializer="zeros", shape=(), dtype="int64", trainable=False,
        synchronization="on_read", aggregation="only_first_replica", name="step")

  @property
  def kl_weight(self):
    """The current KL weight, from the schedule at the current step."""
    return self.kl_schedule(self.step)

  def posterior_parameters(self, inputs):
    return {"mean": tf.cast(self.mean_dense(inputs), tf.float32),
            "log_variance": tf.cast(self.log_variance_dense(inputs), tf.float32)}

  def posterior(self, parameters):
    return tfd.MultivariateNormalDiag(
        loc=parameters["mean"],
        scale_diag=tf.exp(0.5 * parameters["log_variance"]))

  def prior(self):
    return tfd.MultivariateNormalDiag(loc=tf.zeros([self.latent_dim]))

  def kl_per_dimension(self, parameters):
    """Analytic KL(N(m, s^2) || N(0, 1)) of each dimension, [batch, d]."""
    mean, log_variance = parameters["mean"], parameters["log_variance"]
    return 0.5 * (tf.square(mean) + tf.exp(log_variance) - 1.0 - log_variance)

  def kl_divergence(self, parameters):
    return tf.reduce_sum(self.kl_per_dimension(parameters), axis=-1)

  def kl_loss(self, parameters, kl):
    del kl  # The floor applies to each dimension's batch-mean KL.
    per_dim = base.batch_mean(self.kl_per_dimension(parameters))
    if self.free_bits > 0.0:
      per_dim = tf.maximum(per_dim, self.free_bits)
    return self.kl_weight * tf.reduce_sum(per_dim)

  def mode(self, parameters):
    return parameters["mean"]

  def sample(self, parameters, num_samples=None, seed=None):
    """As `LatentLayer.sample`, and an empty batch draws an empty z.

    Under a distribution strategy a partial batch can leave a replica with
    no example (see `base.batch_mean`); TFP's sampler then divides by its
    batch size of zero. A batch with examples draws exactly what TFP draws.
    """
    if seed is None:
      seed = tf.cast(self.seed_generator.next(), tf.int32)
    mean = parameters["mean"]
    shape = (tf.shape(mean) if num_samples is None else
             tf.concat([tf.reshape(tf.cast(num_samples, tf.int32), [1]), tf.shape(mean)], 0))
    return tf.cond(
        tf.shape(mean)[0] > 0,
        lambda: super(GaussianLatent, self).sample(parameters, num_samples, seed=seed),
        lambda: tf.zeros(shape, mean.dtype))

  def prior_coordinate_variance(self):
    return 1.0

  def call(self, inputs, training=None, sample=None, num_samples=None):
    z = super().call(inputs, training=training, sample=sample, num_samples=num_samples)
    if training:
      # After the loss read the weight: step s trains with weight(s).
      self.step.assign_add(1)
    return z

  def get_config(self):
    config = super().get_config()
    config.update({
        "kl_schedule": keras.saving.serialize_keras_object(self.kl_schedule),
        "free_bits": self.free_bits,
    })
    return config

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    config["kl_schedule"] = schedules.get(config["kl_schedule"])
    return cls(**config)
