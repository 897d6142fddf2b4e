"""A loop-free von Mises-Fisher sampler for a fixed concentration.

A vMF(mu, k) sample on S^{d-1} is z = cos(theta) mu + sin(theta) v, where v
is uniform on the directions orthogonal to mu and the angle theta to mu has
the density

  p(theta) ∝ exp(k cos(theta)) sin(theta)^(d - 2),   theta in [0, pi],

which does not depend on mu. With k fixed it is the same for every example,
so its inverse CDF is tabulated once, in float64 (`AngleTable`), and a
sample is a uniform draw pushed through the table by linear interpolation:
static shapes and no rejection loop (Wood's algorithm, TFP's
`VonMisesFisher.sample`, is a `tf.while_loop`), so it runs under
`jit_compile` and on accelerators. It needs no Householder reflection, so
mu = e_1 is exact (TFP's reflection vector is 0/0 there,
tensorflow/probability#1211), and k -> 0 is the uniform distribution.
Gradients reach mu through z; theta does not depend on it.

The table is built in the angle, not in w = cos(theta): the density in
theta is smooth for every d >= 2 (in w it is singular at +-1 when d = 2),
and 1 - w = 2 sin(theta / 2)^2 keeps its precision at large k.

Example:
>>> table = AngleTable(latent_dim=50, concentration=80.0)
>>> z = sample(tf.one_hot([0, 1], 50), table, seed=[1, 2], num_samples=2000)
>>> z.shape
TensorShape([2000, 2, 50])
>>> mean_cosine = float(tf.reduce_mean(z[:, 0, 0]))
>>> abs(mean_cosine - 0.7383) < 0.01   # A_50(80)
True
"""

import math

import numpy as np
import tensorflow as tf

from tf_vmfvae import errors


class AngleTable:
  """The inverse CDF of the angle between a vMF(mu, k) sample and mu.

  Args:
    latent_dim: int >= 2, the dimension d (the sphere is S^{d-1}).
    concentration: float >= 0, the fixed k (0: uniform on the sphere).
    size: int, the number of grid points.

  Attributes:
    cdf, angle: float64 numpy arrays [size]: the CDF at each grid angle.
  """

  def __init__(self, latent_dim, concentration, size=8193):
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 2:
      raise errors.InvalidValueError(f"`latent_dim` must be an integer >= 2, got {latent_dim!r}.")
    if not 0.0 <= concentration < math.inf:
      raise errors.InvalidValueError(
          f"`concentration` must be a finite number >= 0, got {concentration!r}.")
    self.latent_dim, self.concentration = latent_dim, float(concentration)
    k, power = float(concentration), float(latent_dim - 2)
    # The mode: k sin^2 = power cos, i.e. cos = 2k / (power + sqrt(power^2 + 4k^2)).
    root = math.sqrt(power * power + 4.0 * k * k)
    cos_mode = 2.0 * k / (power + root) if power + root > 0 else 0.0
    mode = math.acos(min(max(cos_mode, -1.0), 1.0))
    sin_mode = math.sin(mode)
    curvature = k * cos_mode + (power / sin_mode ** 2 if power else 0.0)
    width = 1.0 / math.sqrt(curvature) if curvature > 0 else math.pi
    low, high = max(0.0, mode - 40.0 * width), min(math.pi, mode + 40.0 * width)
    angle = np.linspace(low, high, size)
    with np.errstate(divide="ignore"):
      log_density = k * (np.cos(angle) - 1.0) + (power * np.log(np.sin(angle)) if power
                                                 else 0.0)
    density = np.exp(log_density - np.max(log_density))
    steps = 0.5 * (density[1:] + density[:-1]) * np.diff(angle)
    cdf = np.concatenate([[0.0], np.cumsum(steps)])
    self.cdf, self.angle = cdf / cdf[-1], angle

  def mean_cosine(self):
    """E[cos(theta)] under the table (for checks against A_d(k))."""
    middle = 0.5 * (self.angle[1:] + self.angle[:-1])
    return float(np.sum(np.diff(self.cdf) * np.cos(middle)))


def sample_angle(table, shape, seed):
  """Angles theta [shape] (float32) drawn through `table` with a stateless seed."""
  cdf = tf.constant(table.cdf, tf.float32)
  angle = tf.constant(table.angle, tf.float32)
  u = tf.random.stateless_uniform(shape, seed=seed, dtype=tf.float32)
  flat = tf.reshape(u, [-1])
  upper = tf.clip_by_value(tf.searchsorted(cdf, flat, side="right"), 1, len(table.cdf) - 1)
  lower = upper - 1
  cdf_low, cdf_high = tf.gather(cdf, lower), tf.gather(cdf, upper)
  fraction = tf.math.divide_no_nan(flat - cdf_low, cdf_high - cdf_low)
  low, high = tf.gather(angle, lower), tf.gather(angle, upper)
  return tf.reshape(low + tf.clip_by_value(fraction, 0.0, 1.0) * (high - low), shape)


def sample(mean_direction, table, seed, num_samples=None):
  """z ~ vMF(mean_direction, table's k): [batch..., d] or [num_samples, batch..., d].

  Args:
    mean_direction: float tensor [batch..., d] of unit vectors.
    table: an `AngleTable` of the same d.
    seed: a stateless seed (int32 [2]).
    num_samples: int or None: a leading axis of that many draws.
  """
  mean_direction = tf.convert_to_tensor(mean_direction, tf.float32)
  dim = mean_direction.shape[-1]
  if dim is not None and dim != table.latent_dim:
    raise errors.InvalidValueError(
        f"`mean_direction` has {dim} dimensions; the table was built for "
        f"{table.latent_dim}.")
  angle_seed, direction_seed = tf.unstack(
      tf.random.experimental.stateless_split(tf.cast(seed, tf.int32), 2))
  batch_shape = tf.shape(mean_direction)[:-1]
  shape = batch_shape if num_samples is None else tf.concat([[num_samples], batch_shape], 0)
  theta = sample_angle(table, shape, angle_seed)[..., None]
  noise = tf.random.stateless_normal(tf.concat([shape, [table.latent_dim]], 0),
                                     seed=direction_seed)
  mu = tf.broadcast_to(mean_direction, tf.shape(noise))
  # A uniform direction orthogonal to mu: project a Gaussian draw, normalize.
  orthogonal = tf.math.l2_normalize(
      noise - tf.reduce_sum(noise * mu, -1, keepdims=True) * mu, axis=-1)
  return tf.cos(theta) * mu + tf.sin(theta) * orthogonal
