"""The paper's training protocol (`decode_samples`): n = 1 is the true ELBO,
n > 1 decodes the mean of n draws (NVRNN) or averages n reconstructions
(NVDM); the evaluator reports it beside the true ELBO."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_vmfvae import evaluate_lib
from tf_vmfvae.models import NVDM
from tf_vmfvae.models import NVRNN

VOCABULARY_SIZE = 24


def _sentences(num, seed=0):
  """Sentences of one of 4 repeated patterns: the code must tell which."""
  rng = np.random.default_rng(seed)
  patterns = rng.integers(4, VOCABULARY_SIZE, size=(4, 7))
  tokens = np.zeros((num, 8), np.int32)
  tokens[:, :7] = patterns[rng.integers(0, 4, size=num)]
  tokens[:, 7] = 3  # <eos>
  decoder_tokens = np.concatenate([np.full((num, 1), 2, np.int32), tokens[:, :-1]], axis=1)
  return {"tokens": tf.constant(tokens), "decoder_tokens": tf.constant(decoder_tokens)}


def _nvrnn(**kwargs):
  return NVRNN(vocabulary_size=VOCABULARY_SIZE, embedding_dim=8, hidden_dim=16, latent_dim=4,
               concentration=20.0, dropout=0.0, seed=0, **kwargs)


@pytest.mark.parametrize("family", ["nvrnn", "nvdm"])
def test_one_draw_is_the_elbo_reconstruction_exactly(family):
  if family == "nvrnn":
    model, batch = _nvrnn(), _sentences(6)
  else:
    model = NVDM(vocabulary_size=20, hidden_dim=8, latent_dim=4, concentration=10.0, seed=0)
    batch = {"counts": tf.constant(np.random.default_rng(0).poisson(1.0, (6, 20)), tf.float32)}
  params = model.latent.posterior_parameters(model.encode_features(batch))
  z = model.latent.sample(params, seed=tf.constant([1, 2]))
  np.testing.assert_array_equal(model.reconstruction_nll_of_draws(batch, z[None]).numpy(),
                                model.reconstruction_nll(batch, z).numpy())
  assert model.decode_samples == 1 and model.get_config()["decode_samples"] == 1


def test_nvdm_averages_the_reconstruction_of_each_draw():
  model = NVDM(vocabulary_size=20, hidden_dim=8, latent_dim=4, concentration=10.0,
               decode_samples=3, seed=0)
  batch = {"counts": tf.constant(np.random.default_rng(0).poisson(1.0, (5, 20)), tf.float32)}
  params = model.latent.posterior_parameters(model.encode_features(batch))
  draws = model.latent.sample(params, num_samples=3, seed=tf.constant([3, 4]))
  each = [model.reconstruction_nll(batch, draws[i]).numpy() for i in range(3)]
  np.testing.assert_allclose(model.reconstruction_nll_of_draws(batch, draws).numpy(),
                             np.mean(each, axis=0), rtol=1e-5)


def test_training_with_three_draws_puts_the_paper_number_below_the_true_elbo():
  """Decoding a mean of 3 draws is less noisy than one draw: on a model
  trained that way the paper-protocol NLL falls below the true ELBO."""
  keras.utils.set_random_seed(0)  # Whatever ran before in this process.
  model = _nvrnn(decode_samples=3)
  model.compile(optimizer=keras.optimizers.Adam(0.01))
  for step in range(300):
    model.train_on_batch(_sentences(32, seed=step))
  evaluator = evaluate_lib.Evaluator(model, num_importance_samples=0, sample_chunk=1)
  batch = _sentences(200, seed=1000)
  elbo_recon = np.mean([evaluator.elbo_terms(batch)[0].numpy().mean() for _ in range(5)])
  paper_recon = np.mean([evaluator.paper_recon(batch, tf.constant(3)).numpy().mean()
                         for _ in range(5)])
  assert paper_recon < elbo_recon - 0.1, (paper_recon, elbo_recon)  # Measured: 0.34.


@pytest.mark.parametrize("value", [0, 2.0, -1])
def test_decode_samples_is_validated(value):
  with pytest.raises(ValueError, match="`decode_samples` must be an integer >= 1"):
    _nvrnn(decode_samples=value)
  with pytest.raises(ValueError, match="`decode_samples` must be an integer >= 1"):
    NVDM(vocabulary_size=20, decode_samples=value)
