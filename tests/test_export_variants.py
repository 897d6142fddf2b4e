"""Export of the conditioned and Gaussian NVRNNs: every signature reloads and
answers like the model it came from. Needs no corpus: each run directory is
written here (runs' layout) with a small untrained model."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf

from tf_vmfvae import config
from tf_vmfvae import export_lib
from tf_vmfvae import generate_lib
from tf_vmfvae import runs
from tf_vmfvae.data import preprocessing
from tf_vmfvae.data import text
from tf_vmfvae.models import NVRNN

import rest_server  # pylint: disable=g-bad-import-order  (tests/rest_server.py)

WORDS = ["the", "company", "said", "stocks", "fell", "shares", "it", "will", "buy"]
SENTENCES = ["the company said it will buy shares", "stocks fell"]
VARIANTS = {
    "bow": dict(latent="vmf", bow_conditioned=True),
    "label": dict(latent="vmf", num_labels=5, label_dim=3),
    "gaussian": dict(latent="gaussian"),
    "gaussian_label": dict(latent="gaussian", num_labels=5, label_dim=3),
}


def _run_dir(tmp_path, kwargs):
  vocabulary = text.Vocabulary(list(text.SPECIALS) + WORDS)
  model = NVRNN(vocabulary_size=len(vocabulary), embedding_dim=6, hidden_dim=8,
                latent_dim=4, concentration=10.0, seed=0, **kwargs)
  model_dir = tmp_path / "run"
  model_dir.mkdir()
  config.ExperimentConfig(model=kwargs).save(model_dir / runs.CONFIG_FILE)
  vocabulary.save(model_dir / runs.VOCAB_FILE)
  runs.save_model(model, model_dir / runs.BEST_MODEL)
  return model_dir, model, vocabulary


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_conditioned_and_gaussian_models_export_and_answer(name, tmp_path):
  kwargs = VARIANTS[name]
  model_dir, model, vocabulary = _run_dir(tmp_path, kwargs)
  path = export_lib.export(model_dir, tmp_path / "exports", max_length=6)
  signatures = tf.saved_model.load(str(path)).signatures
  labelled = "num_labels" in kwargs
  extra = {"labels": tf.constant([1, 4], tf.int32)} if labelled else {}
  sentences = tf.constant(SENTENCES)

  # encode = the model's own posterior on the same tokens.
  encoded = signatures["encode"](sentences=sentences, **extra)
  ids = preprocessing.TextPreprocessor(vocabulary.tokens).encode_words(
      [s.split() for s in SENTENCES])
  ids = [i.tolist() for i in ids]
  length = max(len(i) for i in ids) + 1
  tokens = np.zeros([2, length], np.int32)
  for row, sentence in enumerate(ids):
    tokens[row, :len(sentence) + 1] = sentence + [text.EOS_ID]
  params = model.latent.posterior_parameters(
      model.encode_features({"tokens": tf.constant(tokens)}))
  key = "mean" if kwargs["latent"] == "gaussian" else "mean_direction"
  np.testing.assert_allclose(encoded[key].numpy(), params[key].numpy(), atol=1e-5)

  scored = signatures["score"](sentences=sentences, **extra)
  assert scored["tokens"].numpy().tolist() == [8, 3]
  assert np.all(np.isfinite(scored["nll"].numpy()))
  if kwargs["latent"] == "vmf":  # A fixed kappa: the KL is the closed form for every input.
    np.testing.assert_allclose(scored["kl"].numpy(), model.latent.constant_kl, rtol=1e-5)
  else:  # The Gaussian's KL is the closed form of the encoded posterior.
    mean, log_var = params["mean"].numpy(), params["log_variance"].numpy()
    expected = 0.5 * np.sum(mean ** 2 + np.exp(log_var) - 1 - log_var, axis=-1)
    np.testing.assert_allclose(scored["kl"].numpy(), expected, rtol=1e-4, atol=1e-5)
  reconstructed = signatures["reconstruct"](sentences=sentences, **extra)["sentences"]
  assert reconstructed.shape == (2,)
  label = {"label": tf.constant(2, tf.int32)} if labelled else {}
  path_sentences = signatures["interpolate"](
      sentence_a=tf.constant(SENTENCES[0]), sentence_b=tf.constant(SENTENCES[1]),
      steps=tf.constant(3), **label)["sentences"]
  assert path_sentences.shape == (3,)
  # The library's Generator interpolates every variant the SavedModel does,
  # with the same path: its greedy sentences are the signature's.
  generator = generate_lib.Generator(model_dir, max_length=6)
  assert generator.interpolate(SENTENCES[0], SENTENCES[1], steps=3,
                               label=2 if labelled else None) == [
                                   s.decode("utf-8") for s in path_sentences.numpy()]
  if kwargs.get("bow_conditioned"):
    assert "sample" not in signatures  # A BoW vector needs a sentence.
  else:
    sampled = signatures["sample"](num_samples=tf.constant(2), seed=tf.constant(5, tf.int64),
                                   **label)["sentences"]
    assert sampled.shape == (2,)
  if labelled:
    # The label reaches the decoder: another label, another score.
    other = signatures["score"](sentences=sentences, labels=tf.constant([3, 0], tf.int32))
    assert not np.allclose(other["recon"].numpy(), scored["recon"].numpy())


def test_rest_requests_in_row_and_columnar_format_reach_a_labelled_model(tmp_path):
  """TF Serving's REST API: rows as objects of named inputs, or columns."""
  model_dir, _, _ = _run_dir(tmp_path, VARIANTS["label"])
  path = export_lib.export(model_dir, tmp_path / "exports", max_length=6)
  signatures = tf.saved_model.load(str(path)).signatures
  direct = signatures["score"](sentences=tf.constant(SENTENCES), labels=tf.constant([1, 4]))
  with rest_server.serve(path, "yelp") as url:
    status, rows = rest_server.post(url, {"signature_name": "score", "instances": [
        {"sentences": SENTENCES[0], "labels": 1}, {"sentences": SENTENCES[1], "labels": 4}]})
    assert status == 200, rows
    np.testing.assert_allclose([row["nll"] for row in rows["predictions"]],
                               direct["nll"].numpy(), rtol=1e-6)
    status, columns = rest_server.post(url, {"signature_name": "score", "inputs": {
        "sentences": SENTENCES, "labels": [1, 4]}})
    assert status == 200, columns
    np.testing.assert_allclose(columns["outputs"]["nll"], direct["nll"].numpy(), rtol=1e-6)
    assert columns["outputs"]["tokens"] == [8, 3]
    # A request the signature cannot take answers 400 with the reason.
    status, error = rest_server.post(url, {"signature_name": "score",
                                           "instances": [{"sentences": "stocks fell"}]})
    assert status == 400 and "labels" in error["error"]
    assert rest_server.post(url.replace("yelp", "other"), {"instances": []})[0] == 404


def test_export_publishes_whole_versions_and_never_overwrites(tmp_path, monkeypatch):
  model_dir, _, _ = _run_dir(tmp_path, VARIANTS["label"])
  export_dir = tmp_path / "exports"
  (export_dir / "1").mkdir(parents=True)
  (export_dir / "1" / "keep.txt").write_text("an older version")
  # A racing exporter: the first version number tried is already taken.
  numbers = iter([1, 2])
  monkeypatch.setattr(export_lib, "next_version_dir",
                      lambda base: pathlib.Path(base) / str(next(numbers)))
  path = export_lib.export(model_dir, export_dir, max_length=4)
  assert path == export_dir / "2" and (path / "saved_model.pb").is_file()
  assert (export_dir / "1" / "keep.txt").read_text() == "an older version"
  assert sorted(p.name for p in export_dir.iterdir()) == ["1", "2"]  # No temporary left.
