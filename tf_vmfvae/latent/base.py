"""The shared contract of every latent layer in the zoo."""

import keras
import tensorflow as tf

from tf_vmfvae import errors

if keras.backend.backend() != "tensorflow":
  raise ImportError(
      "tf_vmfvae needs the TensorFlow Keras backend, but KERAS_BACKEND is "
      f"{keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow.")


def batch_mean(values, axis=0):
  """Mean over the batch axis that is 0, not NaN, for an empty batch.

  Every per-example loss of the zoo goes into `add_loss` through this: under
  a distribution strategy the last, partial batch of an epoch can leave a
  replica with no example, and `tf.reduce_mean` would make the step's loss
  NaN.

  Example:
  >>> float(batch_mean(tf.zeros([0])))
  0.0
  >>> float(batch_mean(tf.constant([1.0, 3.0])))
  2.0
  """
  total = tf.reduce_sum(values, axis=axis)
  count = tf.cast(tf.shape(values)[axis], total.dtype)
  return tf.math.divide_no_nan(total, count)


def check_latent_dim(latent_dim):
  if (isinstance(latent_dim, bool) or not isinstance(latent_dim, int)
      or latent_dim < 2):
    raise errors.InvalidValueError(f"`latent_dim` must be an integer >= 2, got {latent_dim!r}.")


class LatentLayer(keras.layers.Layer):

  """Base class: encoder features -> posterior q(z|x) -> z, with its KL loss.

  Subclasses define the posterior parameters, the posterior and prior
  distributions and the per-example KL. This class owns what they share:
  choosing a sample or the mode, the `add_loss` of the batch-mean KL, the
  `kl` metric, seeded sampling, and the densities needed for importance
  weighting.

  Args:
    latent_dim: int >= 2. Dimension of z.
    seed: int or None. Seed of the layer's sampler (stateless TFP sampling
      driven by a `keras.random.SeedGenerator`).
    **kwargs: base `keras.layers.Layer` arguments (name, dtype, ...).

  Call arguments:
    inputs: float tensor [batch, features]: the encoder's output.
    training: bool. Sample z in training, return the mode otherwise.
    sample: bool or None. Overrides `training` for the choice between a
      sample and the mode.
    num_samples: int or None. With a sample, draw this many:
      [num_samples, batch, latent_dim] (the paper's protocol decodes 3).

  Returns:
    z, a float32 tensor [batch, latent_dim] (or [num_samples, ...]).
  """

  # True for latents on the unit sphere (interpolate on great circles,
  # cluster by cosine); set by subclasses.
  is_spherical = False

  def __init__(self, latent_dim, seed=None, **kwargs):
    super().__init__(**kwargs)
    check_latent_dim(latent_dim)
    self.latent_dim = latent_dim
    self.seed = seed
    self.seed_generator = keras.random.SeedGenerator(seed)
    self.kl_tracker = keras.metrics.Mean(name="kl")

  # Subclass interface ------------------------------------------------------
  def posterior_parameters(self, inputs):
    """Returns the parameters of q(z|x) as a dict of float32 tensors."""
    raise NotImplementedError

  def posterior(self, parameters):
    """Returns q(z|x) as a `tfp.distributions.Distribution`, batch [batch]."""
    raise NotImplementedError

  def prior(self):
    """Returns p(z) as a `tfp.distributions.Distribution`."""
    raise NotImplementedError

  def kl_divergence(self, parameters):
    """Per-example KL(q(z|x) || p(z)), float32 [batch]."""
    raise NotImplementedError

  def mode(self, parameters):
    """The posterior's mode/mean direction, [batch, latent_dim]."""
    raise NotImplementedError

  def posterior_mean(self, parameters):
    """E_q[z], [batch, latent_dim]: for a vMF A_d(k) mu, inside the ball."""
    return self.posterior(parameters).mean()

  def prior_coordinate_variance(self):
    """Variance of each coordinate of z under the prior p(z), a float.

    The scale against which the spread of posterior means is judged (active
    units): 1 for N(0, I), 1/latent_dim for the uniform prior on the sphere.
    """
    raise NotImplementedError

  def kl_loss(self, parameters, kl):
    """The scalar added with `add_loss`; by default the batch-mean KL."""
    del parameters
    return batch_mean(kl)

  # Shared behaviour --------------------------------------------------------
  def sample(self, parameters, num_samples=None, seed=None):
    """Draws z ~ q(z|x): [batch, d], or [num_samples, batch, d].

    Args:
      parameters: dict from `posterior_parameters`.
      num_samples: int or None.
      seed: a stateless seed (int32 tensor of shape [2]) or None to use the
        layer's seed generator.
    """
    if seed is None:
      seed = tf.cast(self.seed_generator.next(), tf.int32)
    shape = () if num_samples is None else (num_samples,)
    return self.posterior(parameters).sample(shape, seed=seed)

  def posterior_log_prob(self, z, parameters):
    """log q(z|x), [...batch]; z may carry leading sample dimensions."""
    return self.posterior(parameters).log_prob(z)

  def prior_log_prob(self, z):
    """log p(z) for z [..., latent_dim]."""
    return self.prior().log_prob(z)

  def call(self, inputs, training=None, sample=None, num_samples=None):
    parameters = self.posterior_parameters(inputs)
    kl = self.kl_divergence(parameters)
    self.add_loss(self.kl_loss(parameters, kl))
    self.kl_tracker.update_state(kl)
    if sample is None:
      sample = bool(training)
    if sample:
      return self.sample(parameters, num_samples=num_samples)
    return self.mode(parameters)

  def compute_output_spec(self, inputs, training=None, sample=None, num_samples=None):
    del training
    draws = (num_samples,) if sample and num_samples is not None else ()
    return keras.KerasTensor(draws + tuple(inputs.shape[:-1]) + (self.latent_dim,),
                             dtype="float32")

  def get_config(self):
    config = super().get_config()
    config.update({"latent_dim": self.latent_dim, "seed": self.seed})
    return config
