"""VonMisesFisherLatent and PowerSphericalLatent: samples, gradients, losses."""

import math

import keras
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from tf_vmfvae import latent

SPHERICAL = [latent.VonMisesFisherLatent, latent.PowerSphericalLatent]


def _parameters(dim, kappa, batch=1, direction=None):
  if direction is None:
    direction = np.eye(dim)[0]
  mean_direction = tf.constant(np.tile(direction, (batch, 1)), tf.float32)
  return {"mean_direction": mean_direction,
          "concentration": tf.fill([batch], tf.constant(kappa, tf.float32))}


def _power_spherical_mean_cosine(dim, kappa):
  # E[mu^T z] for PowerSpherical: (a - b) / (a + b), a = b + k, b = (d-1)/2.
  b = (dim - 1) / 2.0
  return kappa / (2 * b + kappa)


@pytest.mark.parametrize("dim,kappa", [(3, 1.0), (10, 10.0), (50, 80.0), (50, 35.0), (200, 150.0)])
def test_vmf_samples_unit_norm_and_mean_cosine_matches_theory(dim, kappa):
  layer = latent.VonMisesFisherLatent(dim, concentration=kappa, seed=3)
  direction = np.random.default_rng(0).normal(size=dim)
  direction /= np.linalg.norm(direction)
  params = _parameters(dim, kappa, direction=direction)
  z = layer.sample(params, num_samples=20000)[:, 0].numpy().astype(np.float64)
  np.testing.assert_allclose(np.linalg.norm(z, axis=-1), 1.0, atol=1e-5)
  cosines = z @ direction
  expected = scipy.special.ive(dim / 2, kappa) / scipy.special.ive(dim / 2 - 1, kappa)
  stderr = cosines.std() / math.sqrt(len(cosines))
  assert abs(cosines.mean() - expected) < 3 * stderr, (cosines.mean(), expected, stderr)


@pytest.mark.parametrize("dim,kappa", [(3, 1.0), (50, 80.0)])
def test_power_spherical_mean_cosine_matches_theory(dim, kappa):
  layer = latent.PowerSphericalLatent(dim, concentration=kappa, seed=3)
  z = layer.sample(_parameters(dim, kappa), num_samples=20000)[:, 0].numpy()
  np.testing.assert_allclose(np.linalg.norm(z, axis=-1), 1.0, atol=1e-5)
  cosines = z[:, 0].astype(np.float64)
  stderr = cosines.std() / math.sqrt(len(cosines))
  assert abs(cosines.mean() - _power_spherical_mean_cosine(dim, kappa)) < 3 * stderr


@pytest.mark.parametrize("cls", SPHERICAL)
@pytest.mark.parametrize("dim", [2, 3, 50])
def test_no_nan_when_mean_direction_is_e1(cls, dim):
  layer = cls(dim, concentration=10.0, seed=1)
  z = layer.sample(_parameters(dim, 10.0, batch=8), num_samples=100).numpy()
  assert np.all(np.isfinite(z))
  np.testing.assert_allclose(np.linalg.norm(z, axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("cls", SPHERICAL)
def test_gradient_reaches_mean_direction(cls):
  layer = cls(50, concentration=80.0, seed=2)
  raw = tf.Variable(tf.random.normal([4, 50], seed=1))
  target = tf.random.normal([4, 50], seed=2)
  with tf.GradientTape() as tape:
    mean_direction = tf.math.l2_normalize(raw, axis=-1)
    z = layer.sample({"mean_direction": mean_direction,
                      "concentration": tf.fill([4], 80.0)})
    loss = tf.reduce_sum(z * target)
  grad = tape.gradient(loss, raw)
  assert grad is not None
  assert np.all(np.isfinite(grad.numpy()))
  assert np.abs(grad.numpy()).max() > 1e-4


@pytest.mark.parametrize("cls", SPHERICAL)
def test_gradient_reaches_projection_through_layer_call(cls):
  layer = cls(16, concentration=50.0, seed=2)
  h = tf.random.normal([8, 32], seed=3)
  with tf.GradientTape() as tape:
    z = layer(h, training=True)
    loss = tf.reduce_sum(z[:, :3])
  grads = tape.gradient(loss, layer.direction_dense.trainable_weights)
  assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)
  assert np.abs(grads[0].numpy()).max() > 0.0


@pytest.mark.parametrize("cls", SPHERICAL)
def test_inference_returns_mean_direction_unless_sampling_requested(cls):
  layer = cls(10, concentration=20.0, seed=4)
  h = tf.random.normal([5, 12], seed=5)
  mean = layer(h, training=False).numpy()
  np.testing.assert_allclose(mean, layer(h).numpy())
  np.testing.assert_allclose(np.linalg.norm(mean, axis=-1), 1.0, atol=1e-6)
  params = layer.posterior_parameters(h)
  np.testing.assert_allclose(mean, params["mean_direction"].numpy())
  sampled = layer(h, training=False, sample=True).numpy()
  assert not np.allclose(sampled, mean)
  assert not np.allclose(layer(h, training=True).numpy(), mean)
  np.testing.assert_allclose(layer(h, training=True, sample=False).numpy(), mean)


def test_fixed_kl_is_constant_added_loss():
  layer = latent.VonMisesFisherLatent(50, concentration=80.0)
  layer(tf.random.normal([3, 7]), training=True)
  assert len(layer.losses) == 1
  assert float(layer.losses[0]) == pytest.approx(latent.vmf_kl_to_uniform(50, 80.0), rel=1e-6)
  assert layer.constant_kl == pytest.approx(19.5152, abs=1e-4)


def _model(latent_layer, features=6):
  inputs = keras.Input((features,))
  hidden = keras.layers.Dense(16, activation="tanh")(inputs)
  z = latent_layer(hidden)
  outputs = keras.layers.Dense(features)(z)
  return keras.Model(inputs, outputs)


@pytest.mark.parametrize("make", [
    lambda: latent.VonMisesFisherLatent(8, concentration=30.0, seed=1),
    lambda: latent.PowerSphericalLatent(8, concentration=30.0, seed=1),
])
def test_add_loss_in_model_losses_and_in_fit_and_evaluate_loss(make):
  keras.utils.set_random_seed(0)
  layer = make()
  model = _model(layer)
  model.compile(optimizer="sgd", loss="mse")
  x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
  # evaluate: deterministic (mean direction); loss = mse + KL.
  mse = float(np.mean((model.predict(x, verbose=0) - x) ** 2))
  result = model.evaluate(x, x, batch_size=32, verbose=0, return_dict=True)
  assert result["loss"] == pytest.approx(mse + layer.constant_kl, rel=1e-5)
  assert result["kl"] == pytest.approx(layer.constant_kl, rel=1e-6)
  model(x, training=True)
  assert len(model.losses) == 1
  assert float(model.losses[0]) == pytest.approx(layer.constant_kl, rel=1e-6)
  history = model.fit(x, x, batch_size=8, epochs=1, verbose=0)
  assert history.history["kl"][0] == pytest.approx(layer.constant_kl, rel=1e-6)
  assert history.history["loss"][0] > layer.constant_kl


def test_learned_concentration_is_clipped_and_kl_is_differentiable():
  layer = latent.VonMisesFisherLatent(
      20, concentration="learned", min_concentration=5.0, max_concentration=300.0, seed=1)
  h = tf.random.normal([16, 30], seed=1) * 50.0
  with tf.GradientTape() as tape:
    layer(h, training=True)
    loss = tf.add_n(layer.losses)
  params = layer.posterior_parameters(h)
  kappa = params["concentration"].numpy()
  assert kappa.shape == (16,)
  assert np.all((kappa >= 5.0) & (kappa <= 300.0))
  np.testing.assert_allclose(
      float(loss),
      np.mean([latent.vmf_kl_to_uniform(20, float(k)) for k in kappa]), rtol=1e-5)
  grads = tape.gradient(loss, layer.concentration_dense.trainable_weights)
  assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)
  inside = (kappa > 5.0) & (kappa < 300.0)
  assert inside.any() and np.abs(grads[0].numpy()).max() > 0.0


@pytest.mark.parametrize("cls", SPHERICAL)
def test_learned_concentration_starts_inside_its_range_with_a_gradient(cls):
  """At initialisation no example may sit at a clip, where the gradient is 0."""
  layer = cls(20, concentration="learned", min_concentration=1.0, max_concentration=500.0)
  h = tf.random.stateless_normal([32, 30], seed=[4, 5])
  with tf.GradientTape() as tape:
    kappa = layer.posterior_parameters(h)["concentration"]
    loss = tf.reduce_sum(kappa)
  assert np.all((kappa.numpy() > 1.0) & (kappa.numpy() < 500.0))
  kernel_grad, bias_grad = tape.gradient(loss, layer.concentration_dense.trainable_weights)
  # d kappa / d bias = sigmoid(raw) > 0 for every example.
  assert float(bias_grad[0]) > 0.5 * 32 * 0.2 and np.abs(kernel_grad.numpy()).max() > 0.0


@pytest.mark.parametrize("cls", SPHERICAL)
def test_posterior_and_prior_log_prob(cls):
  dim, kappa = 50, 80.0
  layer = cls(dim, concentration=kappa, seed=6)
  params = _parameters(dim, kappa, batch=3)
  z = layer.sample(params, num_samples=4)
  log_q = layer.posterior_log_prob(z, params).numpy()
  log_p = layer.prior_log_prob(z).numpy()
  assert log_q.shape == (4, 3) and log_p.shape == (4, 3)
  log_area = math.log(2) + dim / 2 * math.log(math.pi) - math.lgamma(dim / 2)
  np.testing.assert_allclose(log_p, -log_area, rtol=1e-6)
  cos = z.numpy()[..., 0].astype(np.float64)
  if cls is latent.VonMisesFisherLatent:
    v = dim / 2 - 1
    log_c = (v * math.log(kappa) - dim / 2 * math.log(2 * math.pi)
             - (math.log(scipy.special.ive(v, kappa)) + kappa))
    expected = log_c + kappa * cos
  else:
    b = (dim - 1) / 2
    a = b + kappa
    log_n = -((a + b) * math.log(2) + b * math.log(math.pi)
              + math.lgamma(a) - math.lgamma(a + b))
    expected = log_n + kappa * np.log1p(cos)
  np.testing.assert_allclose(log_q, expected, rtol=1e-4)
  # The Monte Carlo KL from these densities agrees with the closed form.
  z_many = layer.sample(params, num_samples=4000)
  mc_kl = np.mean(layer.posterior_log_prob(z_many, params) - layer.prior_log_prob(z_many))
  assert mc_kl == pytest.approx(layer.constant_kl, rel=0.02)


@pytest.mark.parametrize("cls", SPHERICAL)
@pytest.mark.parametrize("concentration", [80.0, "learned"])
def test_config_round_trip_and_keras_file_reload(cls, concentration, tmp_path):
  layer = cls(8, concentration=concentration, min_concentration=2.0,
              max_concentration=200.0, seed=7, name="latent")
  config = layer.get_config()
  clone = cls.from_config(config)
  assert clone.get_config() == config
  model = _model(layer)
  x = np.random.default_rng(1).normal(size=(5, 6)).astype("float32")
  expected = model.predict(x, verbose=0)
  path = str(tmp_path / "model.keras")
  model.save(path)
  reloaded = keras.saving.load_model(path, safe_mode=True)
  np.testing.assert_array_equal(reloaded.predict(x, verbose=0), expected)
  assert isinstance(reloaded.get_layer("latent"), cls)


@pytest.mark.parametrize("cls", SPHERICAL)
@pytest.mark.parametrize("kwargs,match", [
    ({"latent_dim": 1}, "`latent_dim` must be an integer >= 2, got 1"),
    ({"latent_dim": 2.0}, "`latent_dim`"),
    ({"concentration": 0.0}, "`concentration` must be a finite number > 0"),
    ({"concentration": -1}, "got -1"),
    ({"concentration": "fixed"}, "got 'fixed'"),
    ({"concentration": float("inf")}, "`concentration`"),
    ({"min_concentration": 0.0}, "`min_concentration` must be a number > 0"),
    ({"min_concentration": 10.0, "max_concentration": 5.0}, "must be < `max_concentration`"),
])
def test_bad_arguments_raise(cls, kwargs, match):
  arguments = {"latent_dim": 10, "concentration": 10.0}
  arguments.update(kwargs)
  with pytest.raises(ValueError, match=match):
    cls(**arguments)


def test_works_under_tf_function():
  layer = latent.VonMisesFisherLatent(10, concentration=30.0, seed=1)

  @tf.function
  def step(h):
    return layer(h, training=True)

  h = tf.random.stateless_normal([4, 6], seed=[1, 2])  # The same input both times.
  z1, z2 = step(h), step(h)
  assert z1.shape == (4, 10)
  np.testing.assert_allclose(np.linalg.norm(z1.numpy(), axis=-1), 1.0, rtol=1e-5)
  assert not np.allclose(z1.numpy(), z2.numpy())  # The seed generator advances.


@pytest.mark.parametrize("make", [
    lambda d: latent.VonMisesFisherLatent(d, concentration=80.0),
    lambda d: latent.PowerSphericalLatent(d, concentration=80.0),
    lambda d: latent.GaussianLatent(d),
])
@pytest.mark.parametrize("dim", [3, 200])
def test_prior_coordinate_variance_matches_prior_samples(make, dim):
  layer = make(dim)
  z = layer.prior().sample(20000, seed=5).numpy().astype(np.float64)
  # Pooled over coordinates: 20000 * dim draws; relative standard error <= 1 %.
  np.testing.assert_allclose(z.var(axis=0).mean(), layer.prior_coordinate_variance(),
                             rtol=0.03)
