"""Closed-form KL divergences of spherical posteriors to the uniform prior.

This module is the one home of the vMF and Power Spherical KL terms: every
layer, trainer and analysis script calls these functions.

For a von Mises-Fisher distribution on the unit sphere S^{d-1} in R^d with
concentration k, and the uniform prior on that sphere, let v = d/2 - 1:

    KL(vMF(mu, k) || U(S^{d-1}))
        = k * A_d(k) + v*log(k) - log I_v(k) - v*log(2) - lgamma(v + 1)
        = k * A_d(k) - log 0F1(; v + 1; k^2 / 4)

where A_d(k) = I_{d/2}(k) / I_{d/2-1}(k) is the mean resultant length (the
expected cosine between a sample and the mean direction) and 0F1 is the
confluent hypergeometric limit function, 0F1(; b; x) = sum_n x^n / (n! (b)_n).
This equals the expression in Xu & Durrett (2018), Section 3, rearranged so
that it does not subtract large, nearly equal numbers: the naive form loses
all precision for small k and large d (k=1e-3, d=1024 gives a KL of 5e-10
from terms of size 6e3). For small k the log 0F1 term is summed as a series.
"""

import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tf_vmfvae import errors

# Below this concentration, log 0F1 is summed as a power series in k^2/4.
# With k <= 2 the series ratio is at most 1/((n+1)(v+1+n)), so 24 terms
# reach float64 precision for every d >= 2.
_SERIES_MAX_CONCENTRATION = 2.0
_SERIES_TERMS = 24


def _check_dim(dim):
  if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
    raise errors.InvalidValueError(f"`dim` must be an integer >= 2, got {dim!r}.")
  if dim < 2:
    raise errors.InvalidValueError(f"`dim` must be an integer >= 2, got {dim}.")
  return int(dim)


def _log_hyp0f1_series(order_plus_one, x):
  """log 0F1(; b; x) for small x >= 0, as log1p of the power series."""
  term = tf.ones_like(x)
  total = tf.zeros_like(x)
  for n in range(_SERIES_TERMS):
    term = term * x / ((n + 1.0) * (order_plus_one + n))
    total = total + term
  return tf.math.log1p(total)


def _log_hyp0f1(order, concentration):
  """log 0F1(; order + 1; k^2 / 4) = log[Gamma(v+1) (2/k)^v I_v(k)]."""
  dtype = concentration.dtype
  order = tf.constant(order, dtype)
  use_series = concentration <= _SERIES_MAX_CONCENTRATION
  # Both branches are evaluated: feed each only the inputs it is safe on, so
  # that neither produces inf/NaN values or gradients (the double-where trick).
  k_series = tf.where(use_series, concentration, tf.zeros_like(concentration))
  k_bessel = tf.where(use_series, tf.ones_like(concentration), concentration)
  series = _log_hyp0f1_series(order + 1.0, tf.square(k_series) / 4.0)
  bessel = (tfp.math.log_bessel_ive(order, k_bessel) + k_bessel
            + tf.math.lgamma(order + 1.0)
            - order * tf.math.log(k_bessel / 2.0))
  return tf.where(use_series, series, bessel)


def mean_resultant_length(dim, concentration):
  """A_d(k) = I_{d/2}(k) / I_{d/2-1}(k): the expected cosine E[mu^T z].

  Args:
    dim: int >= 2. Dimension d of the ambient space (the sphere is S^{d-1}).
    concentration: float tensor of concentrations k >= 0.

  Returns:
    A tensor like `concentration`.

  Example:
  >>> float(mean_resultant_length(50, tf.constant(80.0, tf.float64)))
  0.7382866...
  """
  dim = _check_dim(dim)
  concentration = tf.convert_to_tensor(concentration)
  return tfp.math.bessel_iv_ratio(
      tf.constant(dim / 2.0, concentration.dtype), concentration)


def vmf_kl_to_uniform(dim, concentration):
  """KL(vMF(mu, k) || Uniform(S^{d-1})); it does not depend on mu.

  Exact closed form, stable from k = 1e-3 to 1e5 and d = 2 to several
  thousand. A Python number for `concentration` gives a Python float,
  computed in float64 (the fixed-k case: the KL is a constant of the model).
  A tensor gives a tensor of its dtype, differentiable in k (the learned-k
  case); pass float64 for full precision.

  Args:
    dim: int >= 2. The latent dimension d.
    concentration: float > 0, or a float tensor of them.

  Returns:
    float, or a tensor shaped like `concentration`.

  Raises:
    ValueError: if `dim` < 2 or a Python `concentration` is not > 0.

  Example:
  >>> round(vmf_kl_to_uniform(50, 80.0), 4)
  19.5152

  References:
    Xu & Durrett (2018), https://arxiv.org/abs/1808.10805, Section 3.
    Davidson et al. (2018), https://arxiv.org/abs/1804.00891, Appendix.
  """
  return _evaluate(_vmf_kl, dim, concentration)


def guu_kl_approximation(dim, concentration):
  """The vMF KL as the paper's code computes it (Guu et al. 2018's formula).

  KL ~ k I_{d/2+1}(k) / I_{d/2}(k) + (d/2) log k - log I_{d/2}(k)
       - lgamma(d/2 + 1) - (d/2) log 2:
  the exact expression with every Bessel order one too high, which is the
  exact KL on the sphere of d + 2 dimensions. Kept to say how far the
  paper's reported KLs are from the exact one; no model uses it.

  Args:
    dim: int >= 2.
    concentration: float > 0.

  Returns:
    float (computed in float64).

  Example:
  >>> round(guu_kl_approximation(50, 35.0) - vmf_kl_to_uniform(50, 35.0), 3)
  -0.115

  References:
    Guu et al. (2018), https://arxiv.org/abs/1709.08878, Appendix.
  """
  return vmf_kl_to_uniform(_check_dim(dim) + 2, concentration)


def _evaluate(kl_fn, dim, concentration):
  """Tensor in, tensor out; a Python number in, a float64 Python float out."""
  dim = _check_dim(dim)
  if tf.is_tensor(concentration):
    return kl_fn(dim, concentration)
  if (isinstance(concentration, bool)
      or not isinstance(concentration, (int, float, np.floating, np.integer))
      or not 0.0 < concentration < math.inf):
    raise errors.InvalidValueError(
        f"`concentration` must be a finite number > 0, got {concentration!r}.")
  return float(kl_fn(dim, tf.constant(float(concentration), tf.float64)))


def _vmf_kl(dim, concentration):
  order = dim / 2.0 - 1.0
  return (concentration * mean_resultant_length(dim, concentration)
          - _log_hyp0f1(order, concentration))


def power_spherical_kl_to_uniform(dim, concentration):
  """KL(PowerSpherical(mu, k) || Uniform(S^{d-1})); it does not depend on mu.

  A Python number gives a float64 Python float, a tensor a tensor of its
  dtype, differentiable in k.

  With b = (d-1)/2 and a = b + k (De Cao & Aziz 2020, Section 3):

      KL = log N + k * E_q[log(1 + mu^T z)] + log|S^{d-1}|
      log N = -[(a+b) log 2 + b log pi + lgamma(a) - lgamma(a+b)]
      E_q[log(1 + mu^T z)] = log 2 + digamma(a) - digamma(a+b)

  Note the scale of k differs from the vMF one: at d=50, k=80 this is 12.06
  nats against 19.52 for the vMF.

  Args:
    dim: int >= 2.
    concentration: float > 0, or a float tensor of them.

  Returns:
    float, or a tensor shaped like `concentration`.

  Example:
  >>> round(power_spherical_kl_to_uniform(50, 80.0), 2)
  12.06

  References:
    De Cao & Aziz (2020), https://arxiv.org/abs/2006.04437.
  """
  return _evaluate(_power_spherical_kl, dim, concentration)


def _power_spherical_kl(dim, concentration):
  beta = tf.constant((dim - 1) / 2.0, concentration.dtype)
  alpha = beta + concentration
  log2 = tf.constant(np.log(2.0), concentration.dtype)
  logpi = tf.constant(np.log(np.pi), concentration.dtype)
  # log of the normalizer N(k, d) of q(z) = N * (1 + mu^T z)^k.
  log_norm = -((alpha + beta) * log2 + beta * logpi
               + tf.math.lgamma(alpha) - tf.math.lgamma(alpha + beta))
  # E_q[log(1 + mu^T z)] = log 2 + digamma(a) - digamma(a + b).
  expected_log = log2 + tf.math.digamma(alpha) - tf.math.digamma(alpha + beta)
  neg_entropy = log_norm + concentration * expected_log
  log_area = log2 + (dim / 2.0) * logpi - tf.math.lgamma(
      tf.constant(dim / 2.0, concentration.dtype))
  return neg_entropy + log_area


def log_sphere_area(dim):
  """log |S^{d-1}| = log(2 pi^{d/2} / Gamma(d/2)), as a Python float."""
  dim = _check_dim(dim)
  return math.log(2.0) + (dim / 2.0) * math.log(math.pi) - math.lgamma(dim / 2.0)


def _invert_increasing(function, dim, target, name, upper):
  """The k in (0, inf) with function(dim, k) = target, for a function rising
  from 0 at k -> 0 towards `upper` (exclusive) as k -> inf.

  Grid refinement on log k in float64: the function is evaluated on 1,001
  points of the bracket at once, the bracket shrinks to the two points
  around the target, four times: 36 nats of log k / 1000^4, below float64's
  spacing of k.
  """
  dim = _check_dim(dim)
  if (isinstance(target, bool) or not isinstance(target, (int, float, np.floating, np.integer))
      or not 0.0 < target < upper):
    raise errors.InvalidValueError(f"`{name}` must be a number in (0, {upper:g}), got {target!r}.")
  low, high = math.log(1e-8), math.log(1e8)
  for _ in range(4):
    log_k = np.linspace(low, high, 1001)
    values = function(dim, tf.constant(np.exp(log_k), tf.float64)).numpy()
    above = int(np.searchsorted(values, target))  # First value >= target.
    if above == 0 or above == len(values):
      raise errors.InvalidValueError(
          f"`{name}`={target!r} needs a concentration outside [1e-8, 1e8] "
          f"at latent_dim={dim}.")
    low, high = log_k[above - 1], log_k[above]
  return float(math.exp(0.5 * (low + high)))


def kappa_for_kl(latent_dim, nats):
  """The fixed concentration whose vMF KL to the uniform prior is `nats`.

  The inverse of `vmf_kl_to_uniform` in k (the KL rises monotonically with
  k): a KL budget, the quantity a fixed-k model pays per example, as a
  concentration. The paper's Fig. 3: the same k is a very different KL
  across dimensions.

  Args:
    latent_dim: int >= 2.
    nats: float > 0, the KL per example.

  Returns:
    float, the concentration (float64 precision).

  Raises:
    ValueError: `nats` is not > 0 or needs k outside [1e-8, 1e8].

  Example:
  >>> round(kappa_for_kl(50, 19.5152), 2)
  80.0
  >>> round(vmf_kl_to_uniform(50, kappa_for_kl(50, 5.0)), 9)
  5.0
  """
  return _invert_increasing(_vmf_kl, latent_dim, nats, "nats", math.inf)


def kappa_for_cosine(latent_dim, mean_cosine):
  """The concentration whose expected cosine E[mu^T z] = A_d(k) is `mean_cosine`.

  The inverse of `mean_resultant_length` in k: how tightly samples gather
  around the mean direction, as a concentration.

  Args:
    latent_dim: int >= 2.
    mean_cosine: float in (0, 1).

  Returns:
    float, the concentration.

  Example:
  >>> round(kappa_for_cosine(50, 0.7382866), 3)
  80.0
  """
  return _invert_increasing(mean_resultant_length, latent_dim, mean_cosine, "mean_cosine",
                            1.0)
