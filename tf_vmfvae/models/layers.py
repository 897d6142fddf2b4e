"""Small Keras layers the NVRNN and NVDM builders are made of."""

import keras
import tensorflow as tf

_PACKAGE = "tf_vmfvae"


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

  def __init__(self, rate, unk_id, pad_id=0, seed=None, **kwargs):
    super().__init__(**kwargs)
    if not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
      raise ValueError(f"`rate` must be in [0, 1), got {rate!r}.")
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

  def __init__(self, pad_id=0, **kwargs):
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
    return inputs + tf.cast(self.bias, inputs.dtype)

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

  def __init__(self, pad_id=0, **kwargs):
    super().__init__(**kwargs)
    self.pad_id = pad_id
    self.recon_tracker = keras.metrics.Mean(name="recon")

  def call(self, targets, logits):
    nll = sequence_nll(targets, logits, self.pad_id)
    self.add_loss(tf.reduce_mean(nll))
    self.recon_tracker.update_state(nll)
    return logits

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update({"pad_id": self.pad_id})
    return config


def sequence_nll(targets, logits, pad_id=0):
  """Per-sentence -log p(targets | logits), float32 [B]; padding ignored."""
  token_nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=tf.cast(targets, tf.int32), logits=tf.cast(logits, tf.float32))
  mask = tf.cast(tf.not_equal(targets, pad_id), tf.float32)
  return tf.reduce_sum(token_nll * mask, axis=-1)
