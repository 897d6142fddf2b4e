"""The loop-free vMF sampler of a fixed concentration, against Wood's sampler
(TFP) and the closed forms, at (d, k) points drawn at random by a fixed seed."""

import math

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

from tf_vmfvae import latent
from tf_vmfvae.latent import kl
from tf_vmfvae.latent import sampling

# Points over d in [2, 1000], k in [0.01, 1e4] (log-uniform), drawn once.
_RNG = np.random.default_rng(20261206)
POINTS = [(int(round(math.exp(a))), float(math.exp(b))) for a, b in zip(
    _RNG.uniform(math.log(2), math.log(1000), 8), _RNG.uniform(math.log(0.01), math.log(1e4), 8))]
N = 4000


def _unit(dim, seed):
  direction = np.random.default_rng(seed).normal(size=dim)
  return tf.constant(direction / np.linalg.norm(direction), tf.float32)


def _cosines(dim, kappa, seed=(1, 2), n=N, direction=None):
  mu = _unit(dim, 0) if direction is None else direction
  z = sampling.sample(mu, sampling.AngleTable(dim, kappa), seed=seed, num_samples=n)
  return (tf.cast(z, tf.float64) @ tf.cast(mu[:, None], tf.float64))[:, 0].numpy()


def _mean_cosine(dim, kappa):
  return float(kl.mean_resultant_length(dim, tf.constant(kappa, tf.float64)))


@pytest.mark.parametrize("dim, kappa", POINTS)
def test_mean_cosine_is_a_d_of_kappa_within_3_standard_errors(dim, kappa):
  w = _cosines(dim, kappa)
  assert abs(w.mean() - _mean_cosine(dim, kappa)) < 3 * w.std() / math.sqrt(len(w)) + 1e-7


@pytest.mark.parametrize("dim, kappa", POINTS)
def test_same_distribution_as_woods_sampler(dim, kappa):
  """Two-sample Kolmogorov-Smirnov on w = mu^T z; 8 points at level 1e-3 each."""
  mu = _unit(dim, 0)
  wood = tfp.distributions.VonMisesFisher(mu, tf.constant(kappa, tf.float32)).sample(
      N, seed=(3, 4))
  w_wood = (tf.cast(wood, tf.float64) @ tf.cast(mu[:, None], tf.float64))[:, 0].numpy()
  assert scipy.stats.ks_2samp(_cosines(dim, kappa), w_wood).pvalue > 1e-3


@pytest.mark.parametrize("dim", [3, 50, 1000])
def test_the_tail_at_large_kappa(dim):
  """1 - w ~ its closed-form mean at k = 1e4, where w is within 1e-4..1e-1 of 1."""
  kappa = 1e4
  gap = 1.0 - _cosines(dim, kappa)
  expected = 1.0 - _mean_cosine(dim, kappa)
  assert abs(gap.mean() - expected) < 3 * gap.std() / math.sqrt(len(gap))
  assert np.all(gap >= 0)


def test_exact_at_e1_and_uniform_as_kappa_goes_to_zero():
  e1 = tf.one_hot(0, 50)
  w = _cosines(50, 80.0, direction=e1)
  assert np.all(np.isfinite(w))
  assert abs(w.mean() - _mean_cosine(50, 80.0)) < 3 * w.std() / math.sqrt(N)
  for dim in (2, 10):
    w = _cosines(dim, 0.0)
    assert abs(w.mean()) < 3 * w.std() / math.sqrt(N)
    assert abs(np.mean(w ** 2) - 1.0 / dim) < 4 * np.std(w ** 2) / math.sqrt(N)


def test_samples_are_unit_vectors_and_gradients_reach_the_mean_direction():
  raw = tf.Variable(tf.random.stateless_normal([4, 20], seed=[5, 6]))
  table = sampling.AngleTable(20, 35.0)
  with tf.GradientTape() as tape:
    mu = tf.math.l2_normalize(raw, axis=-1)
    z = sampling.sample(mu, table, seed=[7, 8])
    loss = tf.reduce_sum(z * tf.range(20, dtype=tf.float32))
  np.testing.assert_allclose(tf.norm(z, axis=-1), 1.0, atol=1e-5)
  gradient = tape.gradient(loss, raw)
  assert np.all(np.isfinite(gradient)) and float(tf.norm(gradient)) > 0


def test_the_layer_uses_the_table_and_compiles_under_xla():
  layer = latent.VonMisesFisherLatent(50, concentration=80.0, sampler="table", seed=1)
  assert layer.get_config()["sampler"] == "table"
  step = tf.function(lambda x: layer(x, training=True), jit_compile=True)
  z = step(tf.random.stateless_normal([8, 30], seed=[1, 1]))
  assert z.shape == (8, 50) and np.all(np.isfinite(z))
  with pytest.raises(ValueError, match="needs a fixed `concentration`"):
    latent.VonMisesFisherLatent(50, concentration="learned", sampler="table")
  with pytest.raises(ValueError, match="`sampler` must be one of"):
    latent.VonMisesFisherLatent(50, sampler="ziggurat")
