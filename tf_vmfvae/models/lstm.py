"""A Keras LSTM whose CPU path is fused: one input matmul, hand-written BPTT.

`keras.layers.LSTM` on a CPU runs its cell once per time step: the input
projection `x_t @ W`, the recurrence `h @ U`, the mask bookkeeping and, in
the backward pass, per-step weight-gradient accumulations, all small
latency-bound ops. `FusedLSTM` is the same layer (same weights, same
config, same outputs; a drop-in for checkpoints) that on a CPU:

- projects the inputs of all time steps in one large matmul outside the
  recurrence, so only `h @ U` runs step by step;
- computes the backward pass by hand (`tf.custom_gradient`): the loop does
  one `dz @ U^T` per step, and the weight gradient `sum_t h_{t-1}^T dz_t`
  is one large matmul after it;
- takes right-padded masks without per-step selects: it runs every step and
  reads the last valid state of each sequence afterwards.

On a GPU (cuDNN usable), or with options the fused path does not cover
(cell dropout, `go_backwards`, `unroll`, `stateful`, non-default
activations), it is exactly `keras.layers.LSTM`.
"""

import keras
import tensorflow as tf


def _lstm_recurrence(input_projection, initial_h, initial_c, recurrent_kernel):
  """Runs the LSTM recurrence over precomputed input projections.

  Args:
    input_projection: float [T, B, 4H], `x_t @ W + b` (gate order i, f, c, o,
      as Keras).
    initial_h, initial_c: float [B, H].
    recurrent_kernel: float [H, 4H].

  Returns:
    (h, c): float [T, B, H] each, the states after every step.
  """

  @tf.custom_gradient
  def recurrence(input_projection, initial_h, initial_c, recurrent_kernel):
    num_steps = tf.shape(input_projection)[0]
    units = tf.shape(recurrent_kernel)[0]

    def step(t, h, c, pre_activations, hs, cs):
      z = input_projection[t] + tf.matmul(h, recurrent_kernel)
      i, f, _, o = tf.split(tf.sigmoid(z), 4, axis=1)
      g = tf.tanh(z[:, 2 * units:3 * units])
      c = f * c + i * g
      h = o * tf.tanh(c)
      return t + 1, h, c, pre_activations.write(t, z), hs.write(t, h), cs.write(t, c)

    arrays = [tf.TensorArray(input_projection.dtype, size=num_steps) for _ in range(3)]
    _, _, _, pre_activations, hs, cs = tf.while_loop(
        lambda t, *_: t < num_steps, step, (0, initial_h, initial_c, *arrays))
    pre_activations, hs, cs = pre_activations.stack(), hs.stack(), cs.stack()

    def grad(d_hs, d_cs):
      d_hs = tf.zeros_like(hs) if d_hs is None else d_hs
      d_cs = tf.zeros_like(cs) if d_cs is None else d_cs
      # Everything that does not depend on the recurrence, for all steps at once.
      i, f, _, o = tf.split(tf.sigmoid(pre_activations), 4, axis=2)
      g = tf.tanh(pre_activations[:, :, 2 * units:3 * units])
      tanh_c = tf.tanh(cs)
      previous_c = tf.concat([initial_c[None], cs[:-1]], 0)
      # dc_t += dh_t * o * (1 - tanh(c)^2); dz_o = dh_t * tanh(c) * o (1 - o);
      # dz_{i,f,g} = dc_t * (g i (1 - i), c_{t-1} f (1 - f), i (1 - g^2));
      # dc_{t-1} = dc_t * f.
      local = tf.concat([o * (1 - tanh_c * tanh_c), tanh_c * o * (1 - o), f,
                         g * i * (1 - i), previous_c * f * (1 - f), i * (1 - g * g)], 2)
      upstream = tf.concat([d_hs, d_cs], 2)
      transposed_kernel = tf.transpose(recurrent_kernel)

      def back_step(t, dh_next, dc_next, d_pre):
        dh, dc = tf.split(upstream[t], 2, axis=1)
        to_c, to_o, forget, to_ifg = tf.split(local[t], [units, units, units, -1],
                                              axis=1)
        dh = dh + dh_next
        dc = dc + dc_next + dh * to_c
        dz_ifg = tf.tile(dc, [1, 3]) * to_ifg
        dz = tf.concat([dz_ifg, dh * to_o], 1)
        return (t - 1, tf.matmul(dz, transposed_kernel), dc * forget,
                d_pre.write(t, dz))

      _, d_h0, d_c0, d_pre = tf.while_loop(
          lambda t, *_: t >= 0, back_step,
          (num_steps - 1, tf.zeros_like(initial_h), tf.zeros_like(initial_c),
           tf.TensorArray(input_projection.dtype, size=num_steps)))
      d_pre = d_pre.stack()
      previous_h = tf.concat([initial_h[None], hs[:-1]], 0)
      d_kernel = tf.matmul(tf.reshape(previous_h, [-1, units]),
                           tf.reshape(d_pre, [-1, 4 * units]), transpose_a=True)
      return d_pre, d_h0, d_c0, d_kernel

    return (hs, cs), grad

  return recurrence(input_projection, initial_h, initial_c, recurrent_kernel)


def fused_lstm(sequences, initial_h, initial_c, mask, kernel, recurrent_kernel, bias,
               return_sequences):
  """The LSTM of Keras (tanh, sigmoid gates) on right-padded sequences.

  Args:
    sequences: float [B, T, D].
    initial_h, initial_c: float [B, H].
    mask: bool [B, T] (True on the valid, leading steps) or None.
    kernel, recurrent_kernel, bias: float [D, 4H], [H, 4H], [4H] or None.
    return_sequences: bool.

  Returns:
    (last_output [B, H], outputs [B, T, H] or last_output[:, None], [h, c]),
    what `keras.layers.RNN.inner_loop` returns: outputs at masked steps
    repeat the last valid output, and the states are those after each
    sequence's last valid step.
  """
  batch_size, num_steps = tf.shape(sequences)[0], tf.shape(sequences)[1]
  units = tf.shape(recurrent_kernel)[0]
  time_major = tf.transpose(sequences, [1, 0, 2])
  projection = tf.matmul(tf.reshape(time_major, [-1, tf.shape(sequences)[2]]), kernel)
  if bias is not None:
    projection = tf.nn.bias_add(projection, bias)
  projection = tf.reshape(projection, [num_steps, batch_size, 4 * units])
  hs, cs = _lstm_recurrence(projection, initial_h, initial_c, recurrent_kernel)

  if mask is None:
    lengths = tf.fill([batch_size], num_steps)
  else:
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
  last = tf.stack([tf.maximum(lengths - 1, 0), tf.range(batch_size)], axis=1)
  # A sequence with no valid step keeps its initial state and outputs zeros.
  has_steps = (lengths > 0)[:, None]
  last_h = tf.gather_nd(hs, last)
  last_output = tf.where(has_steps, last_h, tf.zeros_like(last_h))
  states = [tf.where(has_steps, last_h, initial_h),
            tf.where(has_steps, tf.gather_nd(cs, last), initial_c)]
  if not return_sequences:
    return last_output, last_output[:, None], states
  outputs = tf.transpose(hs, [1, 0, 2])
  if mask is not None:
    outputs = tf.where(mask[:, :, None], outputs, last_output[:, None, :])
  return last_output, outputs, states


def _gpu_available():
  return bool(tf.config.list_logical_devices("GPU"))


@keras.saving.register_keras_serializable(package="tf_vmfvae")
class FusedLSTM(keras.layers.LSTM):
  """`keras.layers.LSTM` with a fused CPU path (see the module docstring).

  Same arguments, weights and config as `keras.layers.LSTM`. Masks must be
  right-padded (padding after the valid steps), as Keras' cuDNN path also
  requires.

  Example:
  >>> import numpy as np
  >>> layer = FusedLSTM(8, return_sequences=True)
  >>> x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
  >>> reference = keras.layers.LSTM(8, return_sequences=True)
  >>> _ = reference(x); _ = layer(x)
  >>> layer.set_weights(reference.get_weights())
  >>> bool(np.allclose(layer(x), reference(x), atol=1e-6))
  True
  """

  def _fused_path_applies(self):
    cell = self.cell
    return (not _gpu_available() and not cell.dropout and not cell.recurrent_dropout
            and not self.go_backwards and not self.unroll and not self.stateful
            and cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid)

  def inner_loop(self, sequences, initial_state, mask, training=False):
    if not self._fused_path_applies():
      return super().inner_loop(sequences, initial_state, mask, training=training)
    if isinstance(mask, (list, tuple)):
      mask = mask[0]
    cell = self.cell
    return fused_lstm(
        sequences, initial_state[0], initial_state[1], mask,
        tf.convert_to_tensor(cell.kernel), tf.convert_to_tensor(cell.recurrent_kernel),
        tf.convert_to_tensor(cell.bias) if cell.use_bias else None,
        return_sequences=self.return_sequences)
