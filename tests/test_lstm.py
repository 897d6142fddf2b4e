"""The fast paths of the training step equal the Keras/TF ops they replace.

FusedLSTM against keras.layers.LSTM (same weights: outputs, states and
gradients, with right-padded masks, an empty sequence and a full one), the
cross-entropy against tf.nn.sparse_softmax_cross_entropy_with_logits, the
tied embedding's reverse pass against keras.layers.ReversibleEmbedding;
and the CPU allocator that importing the package selects.
Tolerances: float32 round-off of sums over a few hundred terms.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_vmfvae.models import layers
from tf_vmfvae.models import lstm

RTOL, ATOL = 1e-5, 1e-5


def _pair(units, **kwargs):
  reference = keras.layers.LSTM(units, return_state=True, **kwargs)
  fused = lstm.FusedLSTM(units, return_state=True, **kwargs)
  return reference, fused


def _outputs_and_gradients(layer, x, mask, h0, c0):
  with tf.GradientTape() as tape:
    tape.watch([x, h0, c0])
    output, h, c = layer(x, mask=mask, initial_state=[h0, c0])
    # Weights that differ per position, so every output's gradient matters.
    loss = (tf.reduce_sum(output * tf.sin(output)) + tf.reduce_sum(1.3 * h)
            + tf.reduce_sum(c * c))
  return [output, h, c], tape.gradient(loss, [x, h0, c0, *layer.trainable_variables])


@pytest.mark.parametrize("return_sequences", [True, False])
def test_fused_lstm_equals_keras_lstm_with_masks(return_sequences):
  rng = np.random.default_rng(0)
  batch, steps, features, units = 6, 9, 5, 7
  x = tf.constant(rng.normal(size=(batch, steps, features)), tf.float32)
  lengths = np.array([steps, 0, 1, 4, 8, 3])  # Full, empty, and in between.
  mask = tf.constant(np.arange(steps)[None] < lengths[:, None])
  h0 = tf.constant(rng.normal(size=(batch, units)), tf.float32)
  c0 = tf.constant(rng.normal(size=(batch, units)), tf.float32)
  reference, fused = _pair(units, return_sequences=return_sequences)
  reference(x)
  fused(x)
  fused.set_weights(reference.get_weights())
  assert fused._fused_path_applies()  # pylint: disable=protected-access
  expected, expected_grads = _outputs_and_gradients(reference, x, mask, h0, c0)
  got, got_grads = _outputs_and_gradients(fused, x, mask, h0, c0)
  for e, g in zip(expected + expected_grads, got + got_grads):
    np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=RTOL, atol=ATOL)


def test_fused_lstm_without_mask_and_state_under_tf_function():
  x = tf.random.stateless_normal([3, 12, 4], seed=[1, 2])
  reference = keras.layers.LSTM(8, return_sequences=True)
  fused = lstm.FusedLSTM(8, return_sequences=True)
  reference(x)
  fused(x)
  fused.set_weights(reference.get_weights())

  @tf.function(reduce_retracing=True)
  def run(layer, x):
    with tf.GradientTape() as tape:
      y = layer(x)
      loss = tf.reduce_sum(y * y)
    return y, tape.gradient(loss, layer.trainable_variables)

  for steps in (12, 5):  # Two sequence lengths, one traced function each layer.
    expected, expected_grads = run(reference, x[:, :steps])
    got, got_grads = run(fused, x[:, :steps])
    for e, g in zip([expected, *expected_grads], [got, *got_grads]):
      np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=RTOL, atol=ATOL)


def test_fused_lstm_falls_back_to_keras_where_it_does_not_apply():
  assert not lstm.FusedLSTM(4, go_backwards=True)._fused_path_applies()  # pylint: disable=protected-access
  assert not lstm.FusedLSTM(4, dropout=0.1)._fused_path_applies()  # pylint: disable=protected-access
  assert not lstm.FusedLSTM(4, activation="relu")._fused_path_applies()  # pylint: disable=protected-access
  # The backward layer of a bidirectional encoder is one of these.
  x = tf.random.stateless_normal([2, 5, 3], seed=[3, 4])
  assert keras.layers.Bidirectional(lstm.FusedLSTM(4))(x).shape == (2, 8)


def test_fused_lstm_round_trips_through_a_keras_file(tmp_path):
  x = tf.random.stateless_normal([2, 5, 3], seed=[5, 6])
  inputs = keras.Input((None, 3))
  model = keras.Model(inputs, lstm.FusedLSTM(4, name="rnn")(inputs))
  model.save(tmp_path / "m.keras")
  loaded = keras.saving.load_model(tmp_path / "m.keras")
  assert isinstance(loaded.get_layer("rnn"), lstm.FusedLSTM)
  np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_sequence_nll_and_its_gradient_equal_tensorflow_cross_entropy():
  rng = np.random.default_rng(1)
  logits = tf.constant(rng.normal(size=(4, 6, 50)) * 5.0, tf.float32)
  targets = tf.constant(rng.integers(0, 50, size=(4, 6)), tf.int32)
  weights = tf.constant(rng.uniform(size=4), tf.float32)  # Upstream gradient != 1.
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(logits)
    got = layers.sequence_nll(targets, logits)
    token = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    expected = tf.reduce_sum(token * tf.cast(targets != 0, tf.float32), axis=-1)
    got_loss, expected_loss = tf.reduce_sum(got * weights), tf.reduce_sum(expected * weights)
  np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5)
  np.testing.assert_allclose(tape.gradient(got_loss, logits).numpy(),
                             tape.gradient(expected_loss, logits).numpy(), atol=1e-6)


@pytest.mark.parametrize("mode", ["eager", "function", "xla"])
def test_cross_entropy_gradient_equals_tensorflow_in_every_execution_mode(mode):
  # The backward pass subtracts the onehot in place, except under XLA.
  rng = np.random.default_rng(2)
  logits = tf.constant(rng.normal(size=(3, 5, 40)) * 3.0, tf.float32)
  targets = tf.constant(rng.integers(1, 40, size=(3, 5)), tf.int32)

  def gradients(logits):
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(logits)
      got = tf.reduce_sum(layers.sequence_nll(targets, logits) * [1.0, 2.0, 3.0])
      token = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
      expected = tf.reduce_sum(tf.reduce_sum(token, axis=-1) * [1.0, 2.0, 3.0])
    return tape.gradient(got, logits), tape.gradient(expected, logits)

  if mode != "eager":
    gradients = tf.function(gradients, jit_compile=mode == "xla")
  got, expected = gradients(logits)
  np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-6)


def test_cross_entropy_is_stable_for_large_logits():
  logits = tf.constant([[[1000.0, 0.0, -1000.0]]])
  nll = layers.sequence_nll(tf.constant([[1]]), logits)
  np.testing.assert_allclose(nll.numpy(), [1000.0], rtol=1e-6)


def test_tied_embedding_reverse_equals_reversible_embedding():
  reference = keras.layers.ReversibleEmbedding(30, 6)
  tied = layers.TiedEmbedding(30, 6)
  reference.build((None,))
  tied.build((None,))
  tied.set_weights(reference.get_weights())
  hidden = tf.random.stateless_normal([2, 4, 6], seed=[7, 8])
  np.testing.assert_allclose(tied(hidden, reverse=True).numpy(),
                             reference(hidden, reverse=True).numpy(), rtol=1e-5, atol=1e-6)


def test_importing_the_package_first_gives_tensorflow_the_bfc_cpu_allocator():
  # Only an allocator that keeps its buffers reports memory statistics.
  code = ("import tf_vmfvae, tensorflow as tf; x = tf.ones([1000]) * 2; "
          "print(tf.config.experimental.get_memory_info('CPU:0')['peak'] > 0)")
  env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
  run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                       text=True, check=False)
  assert run.stdout.strip() == "True", run.stderr[-2000:]
