"""Each latent trains under MirroredStrategy over 2 logical CPU devices.

conftest.py splits the CPU into two logical devices before TF starts.
The losses of evaluation are deterministic (the mode is used), so they must
agree with one device to float precision: that checks the `add_loss` KL is
scaled right across replicas. Training draws different noise per replica,
so training losses are compared within a tolerance.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_vmfvae import latent

LATENTS = {
    "vmf": lambda: latent.VonMisesFisherLatent(8, concentration=30.0, seed=1),
    "vmf_learned": lambda: latent.VonMisesFisherLatent(8, concentration="learned", seed=1),
    "power_spherical": lambda: latent.PowerSphericalLatent(8, concentration=30.0, seed=1),
    "gaussian": lambda: latent.GaussianLatent(8, kl_schedule="linear", seed=1),
}


def _build(make_latent):
  keras.utils.set_random_seed(0)
  inputs = keras.Input((6,))
  hidden = keras.layers.Dense(16, activation="tanh")(inputs)
  outputs = keras.layers.Dense(6)(make_latent()(hidden))
  model = keras.Model(inputs, outputs)
  model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
  return model


def _run(make_latent, strategy):
  x = np.random.default_rng(0).normal(size=(512, 6)).astype("float32")
  with strategy.scope():
    model = _build(make_latent)
  before = model.evaluate(x, x, batch_size=128, verbose=0, return_dict=True)
  history = model.fit(x, x, batch_size=128, epochs=2, shuffle=False, verbose=0)
  return model, before, history.history


@pytest.mark.parametrize("name", sorted(LATENTS))
def test_mirrored_matches_single_device(name, mirrored_strategy):
  mirrored = mirrored_strategy
  assert mirrored.num_replicas_in_sync == 2
  single = tf.distribute.OneDeviceStrategy("/cpu:0")
  model_1, before_1, history_1 = _run(LATENTS[name], single)
  model_2, before_2, history_2 = _run(LATENTS[name], mirrored)
  assert before_2["loss"] == pytest.approx(before_1["loss"], rel=1e-5)
  assert before_2["kl"] == pytest.approx(before_1["kl"], rel=1e-5)
  for key in ("loss", "kl"):
    np.testing.assert_allclose(history_2[key], history_1[key], rtol=0.05)
  if name == "gaussian":
    # 2 epochs x 4 steps of 128: the schedule's step counts global steps once.
    assert int(model_1.get_layer(index=2).step.numpy()) == 8
    step_2 = model_2.get_layer(index=2).step
    assert int(tf.convert_to_tensor(step_2).numpy()) == 8


# Latents whose KL moves with the encoder's weights (a fixed-k KL is a
# constant, and a warm-up weight of 1e-3 hides any scale error).
KL_WITH_A_GRADIENT = {
    "gaussian_weight_1": lambda: latent.GaussianLatent(8, kl_schedule="constant", seed=1),
    "vmf_learned": LATENTS["vmf_learned"],
}


def _train_on_the_kl_alone(make_latent, strategy):
  """The KL is the only loss: it does not depend on the sample, so training is
  deterministic and one device and two replicas must reach the same weights.

  Returns (initial weights, trained weights).
  """
  x = np.random.default_rng(1).normal(size=(256, 6)).astype("float32")
  with strategy.scope():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    outputs = make_latent()(keras.layers.Dense(16, activation="tanh")(inputs))
    model = keras.Model(inputs, outputs)
    # Keras wants a compiled loss under a strategy: one that adds nothing.
    model.compile(optimizer=keras.optimizers.SGD(0.5),
                  loss=lambda y, z: 0.0 * tf.reduce_mean(z, axis=-1))
  initial = [np.array(w) for w in model.get_weights()]
  model.fit(x, x[:, :1], batch_size=64, epochs=2, shuffle=False, verbose=0)
  return initial, [np.array(w) for w in model.get_weights()]


@pytest.mark.parametrize("name", sorted(KL_WITH_A_GRADIENT))
def test_kl_gradient_is_scaled_right_across_replicas(name, mirrored_strategy):
  initial, single = _train_on_the_kl_alone(KL_WITH_A_GRADIENT[name],
                                           tf.distribute.OneDeviceStrategy("/cpu:0"))
  _, mirrored = _train_on_the_kl_alone(KL_WITH_A_GRADIENT[name], mirrored_strategy)
  # The KL's gradient moved the weights, so a scale error would show.
  assert max(float(np.abs(a - b).max()) for a, b in zip(single, initial)) > 1e-2
  for w_single, w_mirrored in zip(single, mirrored):
    np.testing.assert_allclose(w_mirrored, w_single, rtol=1e-4, atol=1e-5)
