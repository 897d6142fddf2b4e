"""The headline estimators against values known exactly.

On the circle (latent_dim 2) every integral over z is a 1-D quadrature, so
log p(x) of a model and the mutual information of a batch of posteriors can
be computed to many digits and compared with what the zoo estimates.
"""

import keras
import numpy as np
import tensorflow as tf

from tf_vmfvae import evaluate_lib
from tf_vmfvae.latent import usage
from tf_vmfvae.latent import VonMisesFisherLatent
from tf_vmfvae.models import NVDM

_GRID = 4096  # Quadrature points on the circle (the integrands are smooth).


def _circle(points=_GRID):
  theta = 2 * np.pi * np.arange(points) / points
  return np.stack([np.cos(theta), np.sin(theta)], axis=-1)


def _vmf_log_density(z, mean_direction, concentration):
  """log vMF(z; mu, k) on the circle: k mu.z - log(2 pi I0(k))."""
  return concentration * z @ mean_direction - np.log(2 * np.pi * np.i0(concentration))


def test_the_importance_weighted_nll_converges_to_the_exact_nll():
  """NVDM with a vMF code on the circle: log p(x) = log mean_theta p(x | z(theta))
  under the uniform prior. The K-sample bound is above it, by less as K grows."""
  keras.utils.set_random_seed(0)  # The weights, whatever ran before in this process.
  model = NVDM(vocabulary_size=40, hidden_dim=16, encoder_layers=1, latent_dim=2,
               concentration=3.0, seed=0)
  rng = np.random.default_rng(0)
  counts = rng.poisson(0.6, size=(4, 40)).astype(np.float32)
  counts[:, 0] += 1.0  # No empty document.
  batch = {"counts": tf.constant(counts)}
  circle = tf.constant(_circle(), tf.float32)
  exact = []
  for doc in range(len(counts)):
    tiled = {"counts": tf.repeat(batch["counts"][doc:doc + 1], _GRID, axis=0)}
    log_lik = -model.reconstruction_nll(tiled, circle).numpy().astype(np.float64)
    exact.append(-(np.logaddexp.reduce(log_lik) - np.log(_GRID)))
  exact = np.array(exact)
  bounds = {}
  for k, repeats in ((1, 400), (10, 200), (2000, 20)):  # Means of many estimates.
    evaluator = evaluate_lib.Evaluator(model, num_importance_samples=k, sample_chunk=500)
    bounds[k] = np.mean([evaluator.iw_nll(batch).numpy() for _ in range(repeats)], axis=0)
  # Each bound is above the exact NLL (up to its sampling noise) and tighter with K.
  assert np.all(bounds[1] > bounds[10]) and np.all(bounds[10] > bounds[2000] - 0.02), bounds
  assert np.all(bounds[2000] >= exact - 0.01)
  # The gap closes like 1/K (its leading term is Var(w) / (2 K E[w]^2)).
  np.testing.assert_allclose(bounds[2000], exact, atol=0.15)
  assert np.all(bounds[2000] - exact <= 0.2 * np.maximum(bounds[10] - exact, 0.05))
  assert np.max(bounds[1] - exact) > 0.5  # The ELBO-like K=1 is visibly looser.


def test_the_mutual_information_estimate_is_unbiased_for_the_batch_mixture():
  """I = (1/B) sum_i KL(q_i || q_bar), q_bar the batch's mixture of posteriors,
  by quadrature; the one-draw-per-example estimate averages to it."""
  latent = VonMisesFisherLatent(2, concentration=4.0)
  angles = np.array([0.0, 0.4, 1.5, 2.5, 3.5, 5.0])
  means = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
  circle = _circle()
  log_q = np.stack([_vmf_log_density(circle, m, 4.0) for m in means])  # [B, grid]
  log_mixture = np.logaddexp.reduce(log_q, axis=0) - np.log(len(means))
  exact = np.mean([np.sum(np.exp(lq) * (lq - log_mixture)) * 2 * np.pi / _GRID
                   for lq in log_q])
  parameters = {"mean_direction": tf.constant(means, tf.float32),
                "concentration": tf.fill([len(means)], 4.0)}
  draws = latent.sample(parameters, num_samples=4000, seed=tf.constant([3, 4]))
  estimates = tf.vectorized_map(lambda z: usage.mutual_information(latent, parameters, z),
                                draws).numpy()
  standard_error = estimates.std(ddof=1) / np.sqrt(len(estimates))
  assert 0.2 < exact < np.log(len(means))  # The test's batch is neither trivial nor saturated.
  assert abs(estimates.mean() - exact) < 4 * standard_error, (estimates.mean(), exact,
                                                              standard_error)
