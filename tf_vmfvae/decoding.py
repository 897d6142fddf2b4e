"""Generating sentences from an NVRNN: greedy, beam search, temperature sampling.

All decoders run step by step in a `tf.while_loop`, so they work eagerly,
inside `tf.function` and in an exported SavedModel. They take latent codes z
([B, d]; None for the RNNLM) and the decoder's other conditioning (the BoW
vector and the label, when the model has them) and return token ids
[B, max_length], with `<pad>` after the first `<eos>`.

Example:
>>> from tf_vmfvae.models import NVRNN
>>> model = NVRNN(vocabulary_size=30, embedding_dim=8, hidden_dim=16, latent_dim=4)
>>> greedy(model, tf.ones([2, 4]) / 2.0, max_length=5).shape
TensorShape([2, 5])
"""

import tensorflow as tf

from tf_vmfvae import errors
from tf_vmfvae.data import text


class _StepDecoder:
  """An NVRNN's step API bound to one batch's conditioning."""

  def __init__(self, model, z, bow=None, label=None):
    self.model = model
    self.z = z
    self.conditioning = model.decoder_conditioning(z, bow=bow, label=label)

  def initial_state(self, batch_size):
    return self.model.decoder_initial_state(self.z, batch_size)

  def step(self, previous, state, conditioning):
    """previous ids [N], state [h, c] [N, H], conditioning [N, C] -> logits, state."""
    return self.model.decoder_step(previous, state, conditioning)


def _batch_size(z, label, batch_size):
  for value in (z, label):
    if value is not None:
      return tf.shape(value)[0]
  if batch_size is None:
    raise errors.InvalidValueError("`batch_size` is needed when there is no z or label.")
  return tf.convert_to_tensor(batch_size, tf.int32)


def _pad_after_eos(ids):
  """Replaces everything after the first <eos> with <pad>."""
  is_eos = tf.cast(tf.equal(ids, text.EOS_ID), tf.int32)
  seen_before = tf.cumsum(is_eos, axis=1, exclusive=True) > 0
  return tf.where(seen_before, tf.zeros_like(ids), ids)


def _never_special(logits):
  """Forbids <pad>, <bos> (never targets) and <unk> as outputs."""
  vocabulary_size = tf.shape(logits)[-1]
  banned = tf.reduce_sum(tf.one_hot([text.PAD_ID, text.BOS_ID, text.UNK_ID], vocabulary_size),
                         axis=0)
  return logits - 1e9 * banned


def _run(model, z, bow, label, batch_size, max_length, choose, allow_unk):
  decoder = _StepDecoder(model, z, bow, label)
  n = _batch_size(z, label, batch_size)
  state = decoder.initial_state(n)
  previous = tf.fill([n], text.BOS_ID)
  outputs = tf.TensorArray(tf.int32, size=max_length)

  def body(t, previous, h, c, outputs):
    logits, (h, c) = decoder.step(previous, [h, c], decoder.conditioning)
    if not allow_unk:
      logits = _never_special(logits)
    else:
      logits = logits - 1e9 * tf.one_hot(text.PAD_ID, tf.shape(logits)[-1])
    token = choose(t, logits)
    return t + 1, token, h, c, outputs.write(t, token)

  _, _, _, _, outputs = tf.while_loop(
      lambda t, *_: t < max_length, body,
      (tf.constant(0), previous, state[0], state[1], outputs))
  return _pad_after_eos(tf.transpose(outputs.stack()))


def greedy(model, z, bow=None, label=None, max_length=50, batch_size=None, allow_unk=False):
  """The most probable word at each step. Returns ids [B, max_length]."""
  return _run(model, z, bow, label, batch_size, max_length,
              lambda t, logits: tf.argmax(logits, axis=-1, output_type=tf.int32), allow_unk)


def sample(model, z, seed, bow=None, label=None, max_length=50, temperature=1.0,
           batch_size=None, allow_unk=False):
  """Ancestral sampling from softmax(logits / temperature).

  Args:
    seed: a stateless seed, int tensor of shape [2]: the same seed gives the
      same sentences.
  """
  seed = tf.cast(seed, tf.int32)

  def choose(t, logits):
    step_seed = tf.random.experimental.stateless_fold_in(seed, t)
    draw = tf.random.stateless_categorical(logits / temperature, 1, seed=step_seed)
    return tf.cast(draw[:, 0], tf.int32)

  return _run(model, z, bow, label, batch_size, max_length, choose, allow_unk)


def beam_search(model, z, beam_width=5, bow=None, label=None, max_length=50,
                length_penalty=0.0, batch_size=None, allow_unk=False):
  """Beam search; returns the best sequence of each example, ids [B, max_length].

  Scores are sum log p, divided by length ** length_penalty at the end
  (0 keeps the plain sum).
  """
  decoder = _StepDecoder(model, z, bow, label)
  n = _batch_size(z, label, batch_size)
  k = beam_width

  def repeat(x):  # [n, ...] -> [n * k, ...], each row k times.
    return None if x is None else tf.repeat(x, k, axis=0)

  conditioning = repeat(decoder.conditioning)
  h, c = [repeat(s) for s in decoder.initial_state(n)]
  # Only the first beam is live at the start, so the k beams do not repeat.
  scores = tf.tile(tf.concat([[0.0], tf.fill([k - 1], -1e9)], 0)[None], [n, 1])
  finished = tf.zeros([n, k], tf.bool)
  lengths = tf.zeros([n, k], tf.float32)
  history = tf.zeros([n, k, 0], tf.int32)
  previous = tf.fill([n * k], text.BOS_ID)

  def body(t, previous, h, c, scores, finished, lengths, history):
    logits, (h, c) = decoder.step(previous, [h, c], conditioning)
    if not allow_unk:
      logits = _never_special(logits)
    log_probs = tf.nn.log_softmax(logits)
    vocabulary_size = tf.shape(log_probs)[-1]
    log_probs = tf.reshape(log_probs, [n, k, vocabulary_size])
    # A finished beam only extends with <pad>, at no cost.
    pad_only = tf.where(tf.one_hot(text.PAD_ID, vocabulary_size) > 0, 0.0, -1e9)
    log_probs = tf.where(finished[..., None], pad_only[None, None], log_probs)
    total = tf.reshape(scores[..., None] + log_probs, [n, k * vocabulary_size])
    scores, index = tf.math.top_k(total, k)
    beam, token = index // vocabulary_size, index % vocabulary_size
    gather = lambda x: tf.gather(x, beam, batch_dims=1)
    finished, lengths, history = gather(finished), gather(lengths), gather(history)
    lengths = lengths + tf.cast(tf.logical_not(finished), tf.float32)
    finished = tf.logical_or(finished, tf.equal(token, text.EOS_ID))
    history = tf.concat([history, token[..., None]], axis=-1)
    flat = tf.reshape(beam + tf.range(n)[:, None] * k, [-1])
    h, c = tf.gather(h, flat), tf.gather(c, flat)
    return (t + 1, tf.reshape(token, [-1]), h, c, scores, finished, lengths, history)

  invariants = (tf.TensorShape([]), tf.TensorShape([None]), tf.TensorShape([None, None]),
                tf.TensorShape([None, None]), tf.TensorShape([None, None]),
                tf.TensorShape([None, None]), tf.TensorShape([None, None]),
                tf.TensorShape([None, None, None]))
  _, _, _, _, scores, _, lengths, history = tf.while_loop(
      lambda t, *_: t < max_length, body,
      (tf.constant(0), previous, h, c, scores, finished, lengths, history),
      shape_invariants=invariants)
  if length_penalty:
    scores = scores / tf.pow(tf.maximum(lengths, 1.0), length_penalty)
  best = tf.argmax(scores, axis=-1, output_type=tf.int32)
  return _pad_after_eos(tf.gather(history, best, batch_dims=1))


def slerp(a, b, steps):
  """Points along the great circle from unit vectors a to b ([d]) -> [steps, d]."""
  a, b = tf.math.l2_normalize(a, -1), tf.math.l2_normalize(b, -1)
  omega = tf.acos(tf.clip_by_value(tf.reduce_sum(a * b), -1.0, 1.0))
  t = tf.linspace(0.0, 1.0, steps)[:, None]
  sin_omega = tf.sin(omega)
  # Nearly equal endpoints: fall back to the normalized straight line.
  linear = tf.math.l2_normalize((1.0 - t) * a + t * b, -1)
  safe = tf.maximum(sin_omega, 1e-6)
  arc = (tf.sin((1.0 - t) * omega) * a + tf.sin(t * omega) * b) / safe
  return tf.where(sin_omega > 1e-4, arc, linear)


def lerp(a, b, steps):
  """Points along the straight line from a to b ([d]) -> [steps, d]."""
  t = tf.linspace(0.0, 1.0, steps)[:, None]
  return (1.0 - t) * a + t * b
