"""Small Keras layers the NVRNN and NVDM builders are made of."""

import keras
import tensorflow as tf

from tf_vmfvae import errors
from tf_vmfvae import latent as latent_lib
from tf_vmfvae.data import text

_PACKAGE = "tf_vmfvae"


def stream_seed(seed, stream):
  """The seed of a model's `stream`-th random layer, derived from the model seed.

  Keras seeds each layer's generator with the seed it is given, so two
  dropout layers built with the model's seed would draw the same masks at
  every step. Each random layer takes its own stream instead.

  Args:
    seed: int or None (None: unseeded, every stream None).
    stream: int >= 0, distinct for each random layer of a model.

  Example:
  >>> stream_seed(0, 1) != stream_seed(0, 2)
  True
  >>> stream_seed(None, 1) is None
  True
  """
  return None if seed is None else (seed * 1_000_003 + stream) % (2**31 - 1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WordDropout(keras.layers.Layer):
  """Replaces each non-padding token with `<unk>` with probability `rate`.

  The word dropout of Bowman et al. (2016), applied to decoder inputs in
  training only.

  Args:
    rate: float in [0, 1).
    unk_id: int, the id that replaces dropped words.
    pad_id: int, the padding id, never replaced.
    seed: int or None.

  Example:
  >>> layer = WordDropout(rate=0.5, unk_id=1, seed=0)
  >>> layer(tf.constant([[5, 6, 0]]), training=False).numpy().tolist()
  [[5, 6, 0]]
  """

  def __init__(self, rate, unk_id, pad_id=text.PAD_ID, seed=None, **kwargs):
    super().__init__(**kwargs)
    if not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
      raise errors.InvalidValueError(f"`rate` must be in [0, 1), got {rate!r}.")
    self.rate = float(rate)
    self.unk_id = unk_id
    self.pad_id = pad_id
    self.seed = seed
    self.seed_generator = keras.random.SeedGenerator(seed)

  def call(self, tokens, training=None):
    if not training or self.rate == 0.0:
      return tokens
    keep = keras.random.uniform(tf.shape(tokens), seed=self.seed_generator) >= self.rate
    keep = tf.logical_or(keep, tokens == self.pad_id)
    return tf.where(keep, tokens, tf.cast(self.unk_id, tokens.dtype))

  def get_config(self):
    config = super().get_config()
    config.update({"rate": self.rate, "unk_id": self.unk_id,
                   "pad_id": self.pad_id, "seed": self.seed})
    return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TileOverTime(keras.layers.Layer):
  """Repeats a per-example vector at every step of a token sequence.

  Call arguments:
    tokens: int [B, T], gives T and the mask (tokens != pad_id).
    vector: float [B, C], or None to tile a constant 1 ([B, T, 1]: an input
      for a decoder that is conditioned on nothing at all).

  Returns:
    float [B, T, C], masked where `tokens` is padding.

  Example:
  >>> TileOverTime()(tf.constant([[4, 5], [6, 0]]), tf.ones([2, 3])).shape
  TensorShape([2, 2, 3])
  """

  def __init__(self, pad_id=text.PAD_ID, **kwargs):
    super().__init__(**kwargs)
    self.pad_id = pad_id

  def call(self, tokens, vector=None):
    if vector is None:
      return tf.ones(tf.concat([tf.shape(tokens), [1]], 0), self.compute_dtype)
    return tf.tile(vector[:, None, :], tf.stack([1, tf.shape(tokens)[1], 1]))

  def compute_mask(self, tokens, mask=None):
    del mask
    return keras.ops.not_equal(tokens, self.pad_id)

  def get_config(self):
    config = super().get_config()
    config.update({"pad_id": self.pad_id})
    return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TiedEmbedding(keras.layers.ReversibleEmbedding):
  """`keras.layers.ReversibleEmbedding` whose reverse pass is one 2-D matmul.

  Keras' reverse call multiplies [B, T, E] inputs by the transposed
  embedding matrix through `tensordot` (reshapes and a materialized
  transpose, run at about half the CPU's matmul throughput here). This
  layer flattens the inputs and multiplies by the [V, E] matrix with
  `transpose_b`, the form the matmul kernel runs fastest. Same weights,
  arguments and outputs.

  Example:
  >>> layer = TiedEmbedding(10, 4)
  >>> layer(tf.constant([[1, 2]])).shape
  TensorShape([1, 2, 4])
  >>> layer(tf.ones([1, 2, 4]), reverse=True).shape
  TensorShape([1, 2, 10])
  """

  def call(self, inputs, reverse=False):
    if not (reverse and self.tie_weights and self.reverse_dtype is None
            and self.logit_soft_cap is None):
      return super().call(inputs, reverse=reverse)
    flat = tf.reshape(inputs, [-1, self.output_dim])
    logits = tf.matmul(flat, tf.cast(self.embeddings, flat.dtype), transpose_b=True)
    return tf.reshape(logits, tf.concat([tf.shape(inputs)[:-1], [self.input_dim]], 0))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Bias(keras.layers.Layer):
  """Adds a learned vector (initialized to zeros) to the last axis.

  The output bias of a tied softmax: `keras.layers.ReversibleEmbedding`
  projects onto the vocabulary without one.

  Example:
  >>> Bias()(tf.ones([2, 3])).shape
  TensorShape([2, 3])
  """

  def build(self, input_shape):
    self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="bias")

  def call(self, inputs):
    return tf.nn.bias_add(inputs, tf.cast(self.bias, inputs.dtype))

  def compute_mask(self, inputs, mask=None):
    return None


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedMean(keras.layers.Layer):
  """Mean over time of the non-padding steps: the BoW vector of NVRNN-BoW.

  Example:
  >>> emb = tf.constant([[[1.0], [3.0], [9.0]]])
  >>> MaskedMean()(emb, mask=tf.constant([[True, True, False]])).numpy().tolist()
  [[2.0]]
  """

  def call(self, inputs, mask=None):
    if mask is None:
      return tf.reduce_mean(inputs, axis=1)
    weights = tf.cast(mask, inputs.dtype)[..., None]
    total = tf.reduce_sum(inputs * weights, axis=1)
    return total / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)

  def compute_mask(self, inputs, mask=None):
    return None

  def compute_output_shape(self, input_shape):
    return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SequenceReconstruction(keras.layers.Layer):
  """Adds the reconstruction loss -log p(x|z), summed over tokens, per sentence.

  The batch mean of the per-sentence NLL is added with `add_loss` and
  reported as the `recon` metric; padding (id `pad_id`) is not counted.
  The logits pass through unchanged, without a Keras mask.

  Call arguments:
    targets: int [B, T].
    logits: float [B, T, V].

  Returns:
    `logits`.
  """

  def __init__(self, pad_id=text.PAD_ID, **kwargs):
    super().__init__(**kwargs)
    self.pad_id = pad_id
    self.recon_tracker = keras.metrics.Mean(name="recon")

  def call(self, targets, logits):
    nll = sequence_nll(targets, logits, self.pad_id)
    self.add_loss(latent_lib.batch_mean(nll))
    self.recon_tracker.update_state(nll)
    return logits

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update({"pad_id": self.pad_id})
    return config


def _subtract_at_labels(matrix, labels, values):
  """`matrix[n, labels[n]] -= values[n]` for a fresh [N, V] float `matrix`.

  `tf.tensor_scatter_nd_sub` copies its whole input first (a 704 x 10K
  softmax: 3-10 ms of a 150-200 ms one-thread training step); `InplaceSub`
  writes into the buffer of `matrix`, which must not be used elsewhere (the
  caller's own temporary). XLA has no `InplaceSub` kernel, and an index
  into the flattened matrix must fit in int32 (a matrix of 2^31 or more
  elements, when its shape is known): there the scatter stays.
  """
  if _in_xla_context() or (matrix.shape.num_elements() or 0) >= 2**31:
    rows = tf.stack([tf.range(tf.shape(labels)[0]), labels], axis=1)
    return tf.tensor_scatter_nd_sub(matrix, rows, values)
  flat = tf.range(tf.shape(matrix)[0]) * tf.shape(matrix)[1] + labels
  updated = tf.raw_ops.InplaceSub(x=tf.reshape(matrix, [-1, 1]), i=flat, v=values[:, None])
  return tf.reshape(updated, tf.shape(matrix))


def _in_xla_context():
  """Whether the op being built is compiled by XLA (e.g. under `jit_compile`)."""
  from tensorflow.python.ops import control_flow_util  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


@tf.custom_gradient
def _sparse_softmax_cross_entropy(logits, labels):
  """-log softmax(logits)[label] per row of [N, V] logits; labels int32 [N].

  The same values as `tf.nn.sparse_softmax_cross_entropy_with_logits`, about
  twice as fast on a CPU: its fused kernel runs on one thread, while these
  few elementwise ops use all cores, and the backward pass reuses the
  forward's exponentials (softmax - onehot, scaled by the upstream gradient,
  the onehot subtracted in place).
  """
  shift = tf.stop_gradient(tf.reduce_max(logits, axis=1, keepdims=True))
  exponentials = tf.exp(logits - shift)
  totals = tf.reduce_sum(exponentials, axis=1)
  nll = (tf.math.log(totals) + shift[:, 0]
         - tf.gather(logits, labels, axis=1, batch_dims=1))

  def grad(upstream):
    softmax_scaled = exponentials * (upstream / totals)[:, None]
    return _subtract_at_labels(softmax_scaled, labels, upstream), None

  return nll, grad


def sequence_nll(targets, logits, pad_id=text.PAD_ID):
  """Per-sentence -log p(targets | logits), float32 [B]; padding ignored.

  Example:
  >>> logits = tf.math.log([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]])
  >>> round(float(sequence_nll(tf.constant([[1, 0]]), logits)[0]), 4)  # -log 0.25
  1.3863
  """
  targets = tf.cast(targets, tf.int32)
  logits = tf.cast(logits, tf.float32)
  flat_logits = tf.reshape(logits, [-1, tf.shape(logits)[-1]])
  token_nll = tf.reshape(
      _sparse_softmax_cross_entropy(flat_logits, tf.reshape(targets, [-1])),
      tf.shape(targets))
  mask = tf.cast(tf.not_equal(targets, pad_id), tf.float32)
  return tf.reduce_sum(token_nll * mask, axis=-1)
