"""KL and mean-resultant-length math against mpmath and scipy references."""

import math

import mpmath
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from tf_vmfvae.latent import kl

DIMS = [2, 3, 10, 50, 100, 200, 1024]
CONCENTRATIONS = [1e-3, 0.1, 1.0, 10.0, 80.0, 150.0, 1e3, 1e5]


def _mp_vmf_kl(dim, kappa):
  """KL(vMF || uniform) in 60-digit arithmetic, the paper's Section 3 form."""
  with mpmath.workdps(60):
    k = mpmath.mpf(kappa)
    d = mpmath.mpf(dim)
    v = d / 2 - 1
    ratio = mpmath.besseli(d / 2, k) / mpmath.besseli(v, k)
    value = (k * ratio + v * mpmath.log(k) - d / 2 * mpmath.log(2 * mpmath.pi)
             - mpmath.log(mpmath.besseli(v, k)) + d / 2 * mpmath.log(mpmath.pi)
             + mpmath.log(2) - mpmath.loggamma(d / 2))
    return float(value)


def _mp_power_spherical_kl(dim, kappa):
  with mpmath.workdps(40):
    b = mpmath.mpf(dim - 1) / 2
    a = b + kappa
    log_norm = -((a + b) * mpmath.log(2) + b * mpmath.log(mpmath.pi)
                 + mpmath.loggamma(a) - mpmath.loggamma(a + b))
    expected = mpmath.log(2) + mpmath.digamma(a) - mpmath.digamma(a + b)
    log_area = (mpmath.log(2) + mpmath.mpf(dim) / 2 * mpmath.log(mpmath.pi)
                - mpmath.loggamma(mpmath.mpf(dim) / 2))
    return float(log_norm + kappa * expected + log_area)


@pytest.mark.parametrize("dim", DIMS)
def test_vmf_kl_matches_mpmath_over_grid(dim):
  for kappa in CONCENTRATIONS:
    value = kl.vmf_kl_to_uniform(dim, kappa)
    expected = _mp_vmf_kl(dim, kappa)
    assert math.isfinite(value)
    assert value > 0.0
    assert value == pytest.approx(expected, rel=1e-6), (dim, kappa)


def test_vmf_kl_tensor_matches_python_and_is_finite():
  kappas = tf.constant(CONCENTRATIONS, tf.float64)
  for dim in DIMS:
    values = kl.vmf_kl_to_uniform(dim, kappas).numpy()
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(
        values, [kl.vmf_kl_to_uniform(dim, k) for k in CONCENTRATIONS], rtol=1e-9)


def test_vmf_kl_paper_values():
  # Values the paper's settings rely on (d=50): k=80 Inputless, k=35 Standard.
  assert kl.vmf_kl_to_uniform(50, 80.0) == pytest.approx(19.5152, abs=1e-4)
  assert kl.vmf_kl_to_uniform(50, 35.0) == pytest.approx(_mp_vmf_kl(50, 35.0), rel=1e-9)


@pytest.mark.parametrize("dim", [2, 10, 50, 1024])
def test_vmf_kl_gradient_matches_mpmath_derivative(dim):
  for kappa in [0.5, 1.999, 2.001, 10.0, 80.0, 1000.0]:
    k = tf.Variable(kappa, dtype=tf.float64)
    with tf.GradientTape() as tape:
      value = kl.vmf_kl_to_uniform(dim, k)
    grad = tape.gradient(value, k).numpy()
    with mpmath.workdps(40):
      expected = float(mpmath.diff(lambda x: _mp_vmf_kl_mp(dim, x), kappa))
    assert grad == pytest.approx(expected, rel=1e-6), (dim, kappa)


def _mp_vmf_kl_mp(dim, k):
  v = mpmath.mpf(dim) / 2 - 1
  return (k * mpmath.besseli(v + 1, k) / mpmath.besseli(v, k)
          + v * mpmath.log(k) - mpmath.log(mpmath.besseli(v, k))
          - v * mpmath.log(2) - mpmath.loggamma(v + 1))


def test_vmf_kl_gradient_is_finite_in_float32_range():
  kappas = tf.Variable([1e-3, 1.0, 2.0, 50.0, 500.0], dtype=tf.float64)
  with tf.GradientTape() as tape:
    total = tf.reduce_sum(kl.vmf_kl_to_uniform(50, kappas))
  grads = tape.gradient(total, kappas).numpy()
  assert np.all(np.isfinite(grads))
  assert np.all(grads > 0.0)  # The KL increases with the concentration.


@pytest.mark.parametrize("dim", [3, 10, 50, 200])
def test_mean_resultant_length_matches_scipy(dim):
  kappas = np.array([0.1, 1.0, 10.0, 80.0, 150.0])
  expected = scipy.special.ive(dim / 2, kappas) / scipy.special.ive(dim / 2 - 1, kappas)
  value = kl.mean_resultant_length(dim, tf.constant(kappas)).numpy()
  np.testing.assert_allclose(value, expected, rtol=1e-9)


@pytest.mark.parametrize("dim", [2, 3, 25, 50, 200])
def test_power_spherical_kl_matches_mpmath(dim):
  for kappa in [0.1, 1.0, 10.0, 80.0, 150.0, 1e3]:
    assert kl.power_spherical_kl_to_uniform(dim, kappa) == pytest.approx(
        _mp_power_spherical_kl(dim, kappa), rel=1e-6)
  assert kl.power_spherical_kl_to_uniform(50, 80.0) == pytest.approx(12.06, abs=5e-3)


def test_log_sphere_area():
  assert kl.log_sphere_area(2) == pytest.approx(math.log(2 * math.pi))
  assert kl.log_sphere_area(3) == pytest.approx(math.log(4 * math.pi))


@pytest.mark.parametrize("fn", [kl.vmf_kl_to_uniform, kl.power_spherical_kl_to_uniform])
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "80", True])
def test_bad_concentration_raises(fn, bad):
  with pytest.raises(ValueError, match="`concentration` must be"):
    fn(50, bad)


@pytest.mark.parametrize("bad", [1, 0, -3, 2.5, "50"])
def test_bad_dim_raises(bad):
  with pytest.raises(ValueError, match="`dim` must be an integer >= 2"):
    kl.vmf_kl_to_uniform(bad, 10.0)


@pytest.mark.parametrize("dim,concentration", [(50, 35.0), (50, 80.0), (25, 100.0),
                                               (50, 150.0), (200, 150.0)])
def test_guu_approximation_is_the_paper_codes_formula(dim, concentration):
  """The formula as the paper's code writes it, in scipy, at the paper's (d, k)."""
  k, d = concentration, dim
  ratio = (scipy.special.iv(d / 2 + 1, k) + scipy.special.iv(d / 2, k) * d / (2 * k)) / scipy.special.iv(d / 2, k)
  expected = (k * (ratio - d / (2 * k)) + d * np.log(k) / 2 - np.log(scipy.special.iv(d / 2, k))
              - scipy.special.gammaln(d / 2 + 1) - d * np.log(2) / 2)
  assert kl.guu_kl_approximation(dim, concentration) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("dim, nats", [(2, 0.01), (10, 1.0), (50, 19.5152), (100, 5.0),
                                       (1000, 60.0)])
def test_kappa_for_kl_inverts_the_mpmath_kl(dim, nats):
  kappa = kl.kappa_for_kl(dim, nats)
  assert _mp_vmf_kl(dim, kappa) == pytest.approx(nats, rel=1e-9)


@pytest.mark.parametrize("dim, kappa", [(3, 0.5), (50, 80.0), (200, 1000.0)])
def test_kappa_for_cosine_inverts_scipys_bessel_ratio(dim, kappa):
  cosine = scipy.special.ive(dim / 2, kappa) / scipy.special.ive(dim / 2 - 1, kappa)
  assert kl.kappa_for_cosine(dim, cosine) == pytest.approx(kappa, rel=1e-8)


@pytest.mark.parametrize("fn, bad", [(kl.kappa_for_kl, 0.0), (kl.kappa_for_kl, -1.0),
                                     (kl.kappa_for_kl, math.inf), (kl.kappa_for_cosine, 1.0),
                                     (kl.kappa_for_cosine, 0.0), (kl.kappa_for_kl, 1e9)])
def test_targets_without_a_concentration_are_refused(fn, bad):
  with pytest.raises(ValueError, match="nats|mean_cosine"):
    fn(50, bad)
