"""SavedModel export for TF Serving: raw strings in, codes/scores/sentences out.

The exported graph does its own preprocessing with the layer training used,
`tf_vmfvae.data.preprocessing.TextPreprocessor` (NFKC, case folding when the
run was trained with `--lowercase`, Unicode-whitespace split, truncation,
vocabulary lookup), so clients send raw strings and get the tokens training
saw. Its ops are core TensorFlow and tensorflow-text, which the stock TF
Serving model server links in; no client needs tf_vmfvae. A Python process
that loads the SavedModel must `import tensorflow_text` first.

Built with `keras.export.ExportArchive`, which tracks the model and the
lookup table and writes every endpoint as a signature.

NVRNN signatures (`serving_default` = `encode`):
  encode(sentences [N] string)        -> mean_direction and concentration
                                         (spherical) or mean and stddev (Gaussian)
  score(sentences)                    -> nll, recon, kl [N] float, tokens [N] int32:
                                         the ELBO with one z ~ q at a fixed seed
  reconstruct(sentences)              -> sentences [N]: greedy decoding from the mode
  sample(num_samples int32 [], seed int64 []) -> sentences from the prior
  interpolate(sentence_a string [], sentence_b string [], steps int32 [])
                                      -> sentences [steps] along the great circle
                                         (spherical) or the straight line (Gaussian)
A label-conditioned model takes `labels` [N] int32 (and `label` [] in sample
and interpolate). A BoW-conditioned model has no `sample` (it needs a sentence).
The RNNLM exports `score` and `sample`.

NVDM signatures (`serving_default` = `encode`):
  encode(counts [N, V] float), encode_text(texts [N] string), score(counts).
"""

import os
import pathlib

import keras
import tensorflow as tf

from tf_vmfvae import decoding
from tf_vmfvae import runs
from tf_vmfvae.data import preprocessing
from tf_vmfvae.data import text

SCORE_SEED = (0, 0)


def next_version_dir(export_dir):
  """<export_dir>/<1 + the largest integer version there>, the TF Serving layout."""
  export_dir = pathlib.Path(export_dir)
  versions = [int(p.name) for p in export_dir.glob("*") if p.name.isdigit()] if (
      export_dir.is_dir()) else []
  return export_dir / str(max(versions, default=0) + 1)


def _score(model, batch):
  """The one-sample ELBO terms of a batch, z drawn at the fixed SCORE_SEED.

  Through the models' shared analysis API (`encode_features`,
  `reconstruction_nll`, `num_tokens`), for NVRNN and NVDM alike.
  """
  tokens = model.num_tokens(batch)
  if model.latent is None:  # The RNNLM: the exact NLL, no KL.
    recon = model.reconstruction_nll(batch, None)
    return {"nll": recon, "recon": recon, "kl": tf.zeros_like(recon), "tokens": tokens}
  params = model.latent.posterior_parameters(model.encode_features(batch))
  z = model.latent.sample(params, seed=tf.constant(SCORE_SEED, tf.int32))
  recon = model.reconstruction_nll(batch, z)
  kl = model.latent.kl_divergence(params)
  return {"nll": recon + kl, "recon": recon, "kl": kl, "tokens": tokens}


def _posterior_outputs(latent, params):
  if "mean_direction" in params:
    return {"mean_direction": params["mean_direction"],
            "concentration": params["concentration"]}
  return {"mean": params["mean"], "stddev": tf.exp(0.5 * params["log_variance"])}


def _endpoint(method, *specs):
  """An endpoint: the method as a tf.function (autograph on), and its inputs."""
  return tf.function(method), list(specs)


class NVRNNServing:
  """The serving functions of an NVRNN; see the module docstring.

  Args:
    model: a trained `NVRNN`.
    vocabulary: its `text.Vocabulary`.
    lowercase: bool, the run's `DataConfig.lowercase`.
    max_words: int, words kept per sentence (the run's `max_len`).
    max_length: int, longest generated sentence.
  """

  def __init__(self, model, vocabulary, lowercase=False, max_words=100, max_length=50):
    self.model = model
    self.max_length = max_length
    self.preprocessor = vocabulary.preprocessor(lowercase=lowercase, max_words=max_words)
    self.words = tf.constant(vocabulary.tokens)
    self.has_latent = model.latent is not None
    self.spherical = self.has_latent and model.latent.is_spherical

  # -- Text in and out ---------------------------------------------------------
  def tokenize(self, sentences):
    """Raw strings -> the model's batch dict ("tokens", "decoder_tokens")."""
    return preprocessing.frame_sentences(self.preprocessor(sentences))

  def detokenize(self, ids):
    ids = tf.where(tf.equal(ids, text.EOS_ID), text.PAD_ID, ids)
    ragged = tf.RaggedTensor.from_tensor(ids, padding=text.PAD_ID)
    return tf.strings.reduce_join(tf.gather(self.words, ragged), axis=-1, separator=" ")

  def batch(self, sentences, labels=None):
    """Tokenizes, with one extra empty sentence at the end.

    The extra row keeps every batch non-empty (an LSTM cannot run over a
    batch of zero sentences, and an empty request must still answer);
    `_trim` drops its outputs.
    """
    batch = self.tokenize(tf.concat([sentences, [""]], axis=0))
    if labels is not None:
      batch["label"] = tf.concat([tf.cast(labels, tf.int32), [0]], axis=0)
    return batch

  @staticmethod
  def _trim(outputs):
    return {k: v[:-1] for k, v in outputs.items()}

  def conditioning(self, batch):
    """(bow or None, label or None) of a batch, as the decoders take them."""
    conditioning = self.model.batch_conditioning(batch)
    return conditioning.get("bow"), conditioning.get("label")

  # -- Endpoints ---------------------------------------------------------------
  def encode(self, sentences, labels=None):
    batch = self.batch(sentences, labels)
    params = self.model.latent.posterior_parameters(self.model.encode_features(batch))
    return self._trim(_posterior_outputs(self.model.latent, params))

  def score(self, sentences, labels=None):
    scores = _score(self.model, self.batch(sentences, labels))
    scores["tokens"] = tf.cast(scores["tokens"], tf.int32)
    return self._trim(scores)

  def reconstruct(self, sentences, labels=None):
    batch = self.batch(sentences, labels)
    params = self.model.latent.posterior_parameters(self.model.encode_features(batch))
    bow, label = self.conditioning(batch)
    ids = decoding.greedy(self.model, self.model.latent.mode(params), bow=bow, label=label,
                          max_length=self.max_length)
    return self._trim({"sentences": self.detokenize(ids)})

  def sample(self, num_samples, seed, label=None):
    """Greedy decoding of z ~ p(z); the RNNLM, with no z, samples its words."""
    num_samples = tf.maximum(num_samples, 0)
    seed = tf.stack([tf.cast(seed, tf.int32), 0])
    labels = None if label is None else tf.fill([num_samples], tf.cast(label, tf.int32))
    if self.has_latent:
      z = self.model.latent.prior().sample(num_samples, seed=seed)
      ids = decoding.greedy(self.model, z, label=labels, max_length=self.max_length)
    else:
      ids = decoding.sample(self.model, None, seed=seed, max_length=self.max_length,
                            batch_size=num_samples)
    return {"sentences": self.detokenize(ids)}

  def interpolation_path(self, sentence_a, sentence_b, steps, label=None):
    """The decoder inputs of `steps` points from sentence a's code to b's.

    z moves on the great circle (spherical latents) or the straight line
    (Gaussian) between the two posterior modes; an NVRNN-BoW's bag-of-words
    vector moves along with it on a straight line; a label stays.

    Returns:
      (z [steps, d], bow [steps, E] or None, labels [steps] or None).
    """
    pair = tf.stack([sentence_a, sentence_b])
    labels = None if label is None else tf.fill([2], tf.cast(label, tf.int32))
    steps = tf.maximum(steps, 1)
    batch = self.batch(pair, labels)
    mode = self.model.latent.mode(
        self.model.latent.posterior_parameters(self.model.encode_features(batch)))
    path = (decoding.slerp if self.spherical else decoding.lerp)(mode[0], mode[1], steps)
    path_labels = None if label is None else tf.fill([steps], tf.cast(label, tf.int32))
    bow, _ = self.conditioning(batch)
    path_bow = None if bow is None else decoding.lerp(bow[0], bow[1], steps)
    return path, path_bow, path_labels

  def interpolate(self, sentence_a, sentence_b, steps, label=None):
    path, bow, labels = self.interpolation_path(sentence_a, sentence_b, steps, label)
    ids = decoding.greedy(self.model, path, bow=bow, label=labels, max_length=self.max_length)
    return {"sentences": self.detokenize(ids)}

  def endpoints(self):
    """{name: (tf.function, input specs)}; the first is `serving_default`."""
    strings = tf.TensorSpec([None], tf.string, name="sentences")
    labelled = bool(self.model.num_labels)
    labels = tf.TensorSpec([None], tf.int32, name="labels")
    label = (tf.TensorSpec([], tf.int32, name="label"),) if labelled else ()
    batch_specs = (strings, labels) if labelled else (strings,)
    result = {}
    if self.has_latent:
      result["encode"] = _endpoint(self.encode, *batch_specs)
    result["score"] = _endpoint(self.score, *batch_specs)
    if self.has_latent:
      result["reconstruct"] = _endpoint(self.reconstruct, *batch_specs)
      result["interpolate"] = _endpoint(
          self.interpolate, tf.TensorSpec([], tf.string, name="sentence_a"),
          tf.TensorSpec([], tf.string, name="sentence_b"),
          tf.TensorSpec([], tf.int32, name="steps"), *label)
    if not self.model.bow_conditioned:
      result["sample"] = _endpoint(self.sample, tf.TensorSpec([], tf.int32, name="num_samples"),
                                   tf.TensorSpec([], tf.int64, name="seed"), *label)
    return result


class NVDMServing:
  """The serving functions of an NVDM; see the module docstring.

  Args:
    model: a trained `NVDM`.
    vocabulary: its `documents.WordList`.
    lowercase: bool, the run's `DataConfig.lowercase`.
  """

  def __init__(self, model, vocabulary, lowercase=False):
    self.model = model
    self.vocabulary_size = len(vocabulary)
    self.preprocessor = preprocessing.TextPreprocessor(vocabulary.words, lowercase=lowercase,
                                                       oov_id=-1)

  def counts_from_text(self, texts):
    ids = self.preprocessor(texts)
    known = tf.ragged.boolean_mask(ids, ids >= 0)
    one_hot = tf.one_hot(known, self.vocabulary_size)  # ragged [N, (w), V]
    return tf.reduce_sum(one_hot, axis=1)

  def encode(self, counts):
    params = self.model.latent.posterior_parameters(
        self.model.encode_features({"counts": counts}))
    return _posterior_outputs(self.model.latent, params)

  def encode_text(self, texts):
    return self.encode(self.counts_from_text(texts))

  def score(self, counts):
    return _score(self.model, {"counts": counts})

  def endpoints(self):
    """{name: (tf.function, input specs)}; the first is `serving_default`."""
    counts = tf.TensorSpec([None, self.vocabulary_size], tf.float32, name="counts")
    texts = tf.TensorSpec([None], tf.string, name="texts")
    return {"encode": _endpoint(self.encode, counts),
            "encode_text": _endpoint(self.encode_text, texts),
            "score": _endpoint(self.score, counts)}


def serving_module(model_dir, max_length=50):
  """Builds the serving functions of a trained model directory.

  Returns:
    An `NVRNNServing` or an `NVDMServing`.
  """
  model, experiment = runs.load_trained(model_dir)
  vocabulary = runs.load_vocabulary(model_dir, experiment.family)
  if experiment.family == "nvdm":
    return NVDMServing(model, vocabulary, lowercase=experiment.data.lowercase)
  return NVRNNServing(model, vocabulary, lowercase=experiment.data.lowercase,
                      max_words=experiment.data.max_len or 100, max_length=max_length)


def export_archive(serving):
  """A `keras.export.ExportArchive` of a serving module's endpoints.

  It tracks the model's weights and the preprocessor's lookup table; its
  attributes named after the endpoints are the functions to call in memory.
  The first endpoint also serves as `serving_default`.
  """
  archive = keras.export.ExportArchive()
  archive.track(serving.model)
  archive.track(serving.preprocessor)
  for name, (fn, specs) in serving.endpoints().items():
    archive.add_endpoint(name, fn, input_signature=specs)
  return archive


def export(model_dir, export_dir, max_length=50):
  """Writes a SavedModel of a trained model to <export_dir>/<next version>/.

  The SavedModel is written into a hidden temporary folder of `export_dir`
  and renamed to its version number only when complete, so TF Serving
  (which watches the integer folders) never sees half a model; an existing
  version is never overwritten (the rename fails on a non-empty folder and
  the next number is tried).

  Returns:
    The version directory written.

  Raises:
    errors.UnusablePathError: `export_dir` cannot be written.
    runs.NoTrainedModelError: nothing trained in `model_dir`.
  """
  export_dir = runs.ensure_writable_dir(export_dir, "--export_dir")
  archive = export_archive(serving_module(model_dir, max_length=max_length))
  tmp = export_dir / f".tmp-export-{os.getpid()}"
  archive.write_out(str(tmp), verbose=False)
  while True:
    path = next_version_dir(export_dir)
    try:
      os.rename(tmp, path)
      return path
    except OSError:
      if not path.exists():
        raise
