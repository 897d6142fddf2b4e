"""Sampling, reconstruction and interpolation with a trained NVRNN, in Python.

Text goes in and out through the same in-graph tokenizer as the SavedModel
export (`export_lib.NVRNNServing`), so the two always agree.

Example (with a trained model directory):
  >>> gen = Generator("runs/ptb_vmf")                                 # doctest: +SKIP
  >>> gen.reconstruct(["the company said it will buy shares"], "beam")  # doctest: +SKIP
"""

import tensorflow as tf

from tf_vmfvae import decoding
from tf_vmfvae import errors
from tf_vmfvae import export_lib

DECODERS = ("greedy", "beam", "sample")


class Generator:
  """Decodes sentences from a trained NVRNN.

  Args:
    model_dir: a trained NVRNN model directory.
    max_length: longest generated sentence, in tokens.
    beam_width: beams of the "beam" decoder.
    temperature: softmax temperature of the "sample" decoder.
    seed: int, seed of sampling from the prior and of the "sample" decoder.
  """

  def __init__(self, model_dir, max_length=50, beam_width=5, temperature=1.0, seed=0):
    self.serving = export_lib.serving_module(model_dir, max_length=max_length)
    if not isinstance(self.serving, export_lib.NVRNNServing):
      raise errors.InvalidValueError(f"{model_dir} does not hold an NVRNN: nothing to generate.")
    self.model = self.serving.model
    self.max_length = max_length
    self.beam_width = beam_width
    self.temperature = temperature
    self.seed = seed

  def _decode(self, z, method, bow=None, label=None, batch_size=None):
    kwargs = dict(bow=bow, label=label, max_length=self.max_length, batch_size=batch_size)
    if method == "greedy":
      ids = decoding.greedy(self.model, z, **kwargs)
    elif method == "beam":
      ids = decoding.beam_search(self.model, z, beam_width=self.beam_width, **kwargs)
    elif method == "sample":
      ids = decoding.sample(self.model, z, seed=[self.seed, 1], temperature=self.temperature,
                            **kwargs)
    else:
      raise errors.InvalidValueError(f"`decoder` must be one of {list(DECODERS)}, got {method!r}.")
    return [s.decode("utf-8") for s in self.serving.detokenize(ids).numpy()]

  def _modes(self, sentences, label=None):
    self._check_label(label)
    labels = None if label is None else tf.fill([len(sentences)], label)
    batch = self.serving.batch(tf.constant(sentences, tf.string), labels)
    params = self.model.latent.posterior_parameters(self.model.encode_features(batch))
    bow, labels = self.serving.conditioning(batch)
    trim = lambda x: None if x is None else x[:-1]
    return self.model.latent.mode(params)[:-1], trim(bow), trim(labels)

  def _check_label(self, label):
    if label is None:
      if self.model.num_labels:
        raise errors.InvalidValueError(
            f"This model is label-conditioned: give --label in "
            f"[0, {self.model.num_labels}).")
      return
    if not self.model.num_labels:
      raise errors.InvalidValueError(
          f"--label={label} is for a label-conditioned model; this one has "
          "no labels: drop --label.")
    if not 0 <= label < self.model.num_labels:
      raise errors.InvalidValueError(
          f"--label must be in [0, {self.model.num_labels}), got {label}.")

  def sample(self, num_samples, method="greedy", label=None):
    """Sentences decoded from z drawn from the prior (or from the RNNLM)."""
    self._check_label(label)
    if self.model.bow_conditioned:
      raise errors.InvalidValueError("A BoW-conditioned model needs a sentence: use reconstruct.")
    z = None
    if self.model.latent is not None:
      z = self.model.latent.prior().sample(num_samples, seed=tf.constant([self.seed, 0]))
    labels = None if label is None else tf.fill([num_samples], label)
    return self._decode(z, method, label=labels, batch_size=num_samples)

  def reconstruct(self, sentences, method="greedy", label=None):
    """Encodes each sentence to its posterior mode and decodes it."""
    if self.model.latent is None:
      raise errors.InvalidValueError("The RNNLM has no latent code to reconstruct from.")
    z, bow, labels = self._modes(list(sentences), label)
    return self._decode(z, method, bow=bow, label=labels)

  def interpolate(self, sentence_a, sentence_b, steps=5, method="greedy", label=None):
    """Decodes points between two sentences' codes (great circle on the sphere)."""
    if self.model.latent is None:
      raise errors.InvalidValueError("The RNNLM has no latent code to interpolate.")
    self._check_label(label)
    path, bow, labels = self.serving.interpolation_path(
        tf.constant(sentence_a), tf.constant(sentence_b), tf.constant(steps), label)
    return self._decode(path, method, bow=bow, label=labels)
