"""GaussianLatent: KL, schedule following the step, free bits, saving."""

import math

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from tf_vmfvae import latent
from tf_vmfvae.latent import schedules


def _model(layer, features=6):
  inputs = keras.Input((features,))
  hidden = keras.layers.Dense(16, activation="tanh")(inputs)
  outputs = keras.layers.Dense(features)(layer(hidden))
  return keras.Model(inputs, outputs)


def test_kl_matches_tfp_and_log_probs_match_scipy():
  layer = latent.GaussianLatent(4, seed=1)
  h = tf.random.normal([3, 5], seed=2)
  layer(h)
  params = layer.posterior_parameters(h)
  kl = layer.kl_divergence(params).numpy()
  expected = layer.posterior(params).kl_divergence(layer.prior()).numpy()
  np.testing.assert_allclose(kl, expected, rtol=1e-5)
  z = layer.sample(params, num_samples=2)
  mean, log_var = params["mean"].numpy(), params["log_variance"].numpy()
  expected_q = scipy.stats.norm.logpdf(z.numpy(), mean, np.exp(0.5 * log_var)).sum(-1)
  np.testing.assert_allclose(layer.posterior_log_prob(z, params).numpy(), expected_q, rtol=1e-5)
  expected_p = scipy.stats.norm.logpdf(z.numpy()).sum(-1)
  np.testing.assert_allclose(layer.prior_log_prob(z).numpy(), expected_p, rtol=1e-5)


def test_reparameterized_sample_and_mode():
  layer = latent.GaussianLatent(4, seed=1)
  h = tf.Variable(tf.random.normal([3, 5], seed=2))
  with tf.GradientTape() as tape:
    z = layer(h, training=True)
    loss = tf.reduce_sum(z)
  grads = tape.gradient(loss, layer.log_variance_dense.trainable_weights)
  assert np.abs(grads[0].numpy()).max() > 0.0  # Gradient reaches sigma.
  params = layer.posterior_parameters(h)
  np.testing.assert_allclose(layer(h, training=False).numpy(), params["mean"].numpy())


def test_a_replica_with_no_example_draws_an_empty_z():
  # Under a distribution strategy a partial batch can leave a replica empty;
  # TFP's sampler divided by its batch size of zero there.
  layer = latent.GaussianLatent(4, seed=1)
  layer.build((None, 8))

  @tf.function(input_signature=[tf.TensorSpec([None, 8])])
  def encode_and_draw(features):
    parameters = layer.posterior_parameters(features)
    return layer(features, training=True), layer.sample(parameters, num_samples=3)

  z, draws = encode_and_draw(tf.zeros([0, 8]))
  assert z.shape == (0, 4) and draws.shape == (3, 0, 4)
  # With examples it draws what TFP draws from the same seed.
  parameters = layer.posterior_parameters(tf.random.normal([2, 8], seed=3))
  seed = tf.constant([5, 6])
  np.testing.assert_array_equal(layer.sample(parameters, 3, seed=seed),
                                layer.posterior(parameters).sample(3, seed=seed))


def test_schedule_weight_follows_training_step():
  schedule = schedules.LinearWarmup(warmup_steps=4)
  layer = latent.GaussianLatent(3, kl_schedule=schedule, seed=1)
  h = tf.random.normal([2, 5], seed=3)
  for step in range(6):
    layer(h, training=True)
    kl = float(tf.reduce_mean(layer.kl_divergence(layer.posterior_parameters(h))))
    assert float(layer.losses[0]) == pytest.approx(min(step / 4, 1.0) * kl, rel=1e-5, abs=1e-7)
  assert int(layer.step.numpy()) == 6
  layer(h, training=False)  # Inference does not advance the schedule.
  assert int(layer.step.numpy()) == 6


def test_step_advances_under_fit_and_survives_save(tmp_path):
  layer = latent.GaussianLatent(3, kl_schedule=schedules.Sigmoid(midpoint=5, steepness=0.5),
                                seed=1, name="latent")
  model = _model(layer)
  model.compile(optimizer="sgd", loss="mse")
  x = np.random.default_rng(0).normal(size=(24, 6)).astype("float32")
  model.fit(x, x, batch_size=8, epochs=2, verbose=0)
  assert int(layer.step.numpy()) == 6
  assert float(layer.kl_weight) == pytest.approx(1 / (1 + math.exp(-0.5 * (6 - 5))))
  path = str(tmp_path / "g.keras")
  model.save(path)
  reloaded = keras.saving.load_model(path, safe_mode=True).get_layer("latent")
  assert int(reloaded.step.numpy()) == 6
  assert reloaded.kl_schedule.get_config() == layer.kl_schedule.get_config()
  np.testing.assert_array_equal(
      keras.saving.load_model(path).predict(x, verbose=0), model.predict(x, verbose=0))


def test_free_bits_floor():
  layer = latent.GaussianLatent(5, free_bits=0.25, seed=1)
  h = tf.zeros([4, 3])
  layer(h, training=True)
  # Zero inputs and zero bias: q = N(0, 1) so every dimension's KL is 0,
  # and the loss is floored at d * free_bits, while the metric shows 0.
  params = layer.posterior_parameters(h)
  assert float(tf.reduce_max(layer.kl_divergence(params))) == pytest.approx(0.0, abs=1e-7)
  assert float(layer.losses[0]) == pytest.approx(5 * 0.25)
  assert float(layer.kl_tracker.result()) == pytest.approx(0.0, abs=1e-7)
  # Above the floor, the loss is the batch-mean KL.
  big = tf.random.normal([64, 3], seed=1) * 10.0
  layer(big, training=True)
  per_dim = tf.reduce_mean(layer.kl_per_dimension(layer.posterior_parameters(big)), 0).numpy()
  assert float(layer.losses[0]) == pytest.approx(np.maximum(per_dim, 0.25).sum(), rel=1e-5)


def test_config_round_trip():
  layer = latent.GaussianLatent(7, kl_schedule="cyclical", free_bits=0.1, seed=3)
  config = layer.get_config()
  clone = latent.GaussianLatent.from_config(config)
  assert clone.get_config() == config
  assert isinstance(clone.kl_schedule, schedules.Cyclical)


@pytest.mark.parametrize("kwargs,match", [
    ({"latent_dim": 1}, "`latent_dim` must be an integer >= 2, got 1"),
    ({"kl_schedule": "cosine"}, "`kl_schedule` must be one of .* got 'cosine'"),
    ({"free_bits": -0.5}, "`free_bits` must be a number >= 0, got -0.5"),
])
def test_bad_arguments_raise(kwargs, match):
  arguments = {"latent_dim": 4}
  arguments.update(kwargs)
  with pytest.raises(ValueError, match=match):
    latent.GaussianLatent(**arguments)
