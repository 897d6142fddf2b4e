"""NVDM: the .feat parser (every bad input), model, perplexities, smoke run."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_vmfvae import config
from tf_vmfvae import data
from tf_vmfvae import evaluate_lib
from tf_vmfvae import latent
from tf_vmfvae.data import documents
from tf_vmfvae.data import registry
from tf_vmfvae.models import NVDM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write(path, text):
  path.write_text(text)
  return path


def _rcv1_fixture(folder, num_train=40, num_test=10, vocab=30, seed=0):
  """Writes a small corpus in the RCV1 / NVDM format: train/test .feat, vocab.new."""
  rng = np.random.default_rng(seed)
  folder.mkdir(parents=True, exist_ok=True)
  _write(folder / "vocab.new", "".join(f"word{i} {1000 - i}\n" for i in range(vocab)))
  for name, num in (("train.feat", num_train), ("test.feat", num_test)):
    lines = []
    for _ in range(num):
      ids = rng.choice(np.arange(1, vocab + 1), size=rng.integers(1, 8), replace=False)
      lines.append(" ".join([str(rng.integers(1, 5))] +
                            [f"{i}:{rng.integers(1, 4)}" for i in ids]))
    _write(folder / name, "\n".join(lines) + "\n")
  return folder


def test_read_feat_and_vocabulary(tmp_path):
  _write(tmp_path / "vocab.new", "apple 10\nbanana 5\ncherry 2\n")
  _write(tmp_path / "d.feat", "3 1:2 3:1\n\n7 2:4\n5\n")
  vocab = documents.read_vocabulary(tmp_path / "vocab.new")
  assert vocab.words == ["apple", "banana", "cherry"]
  docs = documents.read_feat(tmp_path / "d.feat", len(vocab))
  assert [i.tolist() for i in docs.ids] == [[0, 2], [1]]  # 1-based ids -> 0-based.
  assert [c.tolist() for c in docs.counts] == [[2.0, 1.0], [4.0]]
  assert docs.labels.tolist() == [3, 7]
  assert (docs.stats.lines, docs.stats.kept, docs.stats.empty_skipped, docs.stats.words) == (
      4, 2, 2, 7)
  dataset = documents.document_dataset(docs, 3, batch_size=2)
  batch = next(iter(dataset))
  np.testing.assert_array_equal(batch["counts"], [[2, 0, 1], [0, 4, 0]])
  assert dataset.options().autotune.enabled is False  # pipeline.prefetched


@pytest.mark.parametrize("line,match", [
    ("1 2-3\n", r"d.feat:2: malformed pair '2-3'; expected id:count"),
    ("1 a:3\n", r"d.feat:2: malformed pair 'a:3'"),
    ("1 4:1\n", r"d.feat:2: word id 4 is outside \[1, 3\]"),
    ("1 0:1\n", r"d.feat:2: word id 0 is outside"),
    ("1 2:0\n", r"d.feat:2: count 0 of word id 2 must be >= 1"),
    ("x 2:1\n", r"d.feat:2: the line must start with an integer label, got 'x'"),
    ("1 2:1 2:3\n", r"d.feat:2: a word id is repeated"),
    (b"1 2:1 \xff\n", r"d.feat:2: not valid UTF-8"),
])
def test_read_feat_bad_input_names_file_and_line(tmp_path, line, match):
  path = tmp_path / "d.feat"
  path.write_bytes(b"1 1:1\n" + (line if isinstance(line, bytes) else line.encode()))
  with pytest.raises(data.CorpusError, match=match):
    documents.read_feat(path, vocabulary_size=3)


def test_missing_feat_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="Corpus file not found"):
    documents.read_feat(tmp_path / "none.feat", 3)


def test_rcv1_loader_on_fixture_with_validation_holdout(tmp_path):
  folder = _rcv1_fixture(tmp_path / "rcv1")
  cfg = config.DataConfig(dataset="rcv1", data_dir=str(folder), validation_fraction=0.25)
  splits = data.load_document_splits(cfg)
  assert len(splits.vocabulary) == 30
  assert splits.num_examples("valid") == 10 and splits.num_examples("train") == 30
  assert splits.num_examples("test") == 10
  again = data.load_document_splits(cfg)  # The hold-out is fixed by its seed.
  for a, b in zip(splits.documents["valid"].ids, again.documents["valid"].ids):
    np.testing.assert_array_equal(a, b)
  batch = next(iter(splits.dataset("train", 8)))
  assert batch["counts"].shape == (8, 30)


def test_20news_registry_entry_and_real_statistics():
  spec = registry.get_spec("20news")
  assert spec.format == "feat" and set(spec.files) == {"train.feat", "test.feat", "vocab.new"}
  if not os.environ.get("TF_VMFVAE_DATA_DIR"):
    pytest.skip("needs ../shared/data")
  splits = data.load_document_splits(config.DataConfig(dataset="20news"))
  assert len(splits.vocabulary) == 2000
  assert splits.num_examples("train") + splits.num_examples("valid") == 11268
  assert splits.num_examples("test") == 7505
  assert splits.num_tokens("test") == 720898  # SOURCES.md


@pytest.mark.parametrize("latent_kind,decoder", [
    ("vmf", {}), ("power_spherical", {}), ("gaussian", {}), ("vmf_learned", {}),
    ("vmf", {"decoder_hidden_dim": 16, "decoder_activation": "relu"}),
])
def test_nvdm_trains_on_synthetic_corpus_and_reloads(latent_kind, decoder, tmp_path):
  rng = np.random.default_rng(0)
  # Two "topics": documents use words 0-9 or words 10-19.
  topic = rng.integers(0, 2, size=256)
  counts = np.zeros((256, 20), np.float32)
  for d, t in enumerate(topic):
    np.add.at(counts[d], rng.integers(10 * t, 10 * t + 10, size=30), 1.0)
  ds = tf.data.Dataset.from_tensor_slices({"counts": counts}).batch(32)
  model = NVDM(vocabulary_size=20, hidden_dim=32, latent_dim=4, latent=latent_kind,
               concentration=20.0, seed=1, **decoder)
  model.compile(optimizer=keras.optimizers.Adam(0.01))
  history = model.fit(ds, epochs=8, verbose=0).history
  assert history["recon"][-1] < history["recon"][0] - 5.0
  if latent_kind == "vmf":
    np.testing.assert_allclose(history["kl"], latent.vmf_kl_to_uniform(4, 20.0), rtol=1e-6)
  # -sum count log p: a uniform decoder would give 30 log 20 = 89.9 per document.
  assert history["recon"][-1] < 30 * np.log(20)
  path = str(tmp_path / "nvdm.keras")
  model.save(path)
  reloaded = keras.saving.load_model(path, safe_mode=True)
  z = tf.ones([3, 4]) / 2.0
  np.testing.assert_array_equal(reloaded.decoder({"z": z}), model.decoder({"z": z}))
  assert reloaded.get_config() == model.get_config()


def test_nvdm_bad_arguments():
  with pytest.raises(ValueError, match="`latent` must be one of"):
    NVDM(vocabulary_size=20, latent="none")
  with pytest.raises(ValueError, match="`decoder_hidden_dim` must be an integer >= 0"):
    NVDM(vocabulary_size=20, decoder_hidden_dim=-1)
  with pytest.raises(ValueError, match="`decoder_activation` must name a Keras activation"):
    NVDM(vocabulary_size=20, decoder_hidden_dim=8, decoder_activation="swishy")


def test_bag_of_words_nll_hand_computed():
  from tf_vmfvae.models import nvdm  # pylint: disable=g-import-not-at-top
  logits = tf.math.log(tf.constant([[0.5, 0.25, 0.25]]))
  nll = nvdm.bag_of_words_nll(tf.constant([[2.0, 0.0, 1.0]]), logits)
  assert float(nll[0]) == pytest.approx(-2 * np.log(0.5) - np.log(0.25), rel=1e-6)


def test_perplexity_definitions_hand_computed():
  nll, tokens = [10.0, 30.0, 2.0], [5, 10, 1]
  # Corpus: exp(42 / 16). Per document: exp(mean(2, 3, 2)) = exp(7/3).
  assert evaluate_lib.corpus_perplexity(nll, tokens) == pytest.approx(np.exp(42 / 16))
  assert evaluate_lib.document_perplexity(nll, tokens) == pytest.approx(np.exp(7 / 3))


@pytest.mark.skipif(not os.environ.get("TF_VMFVAE_DATA_DIR"), reason="needs ../shared/data")
def test_smoke_nvdm_flags_train_then_evaluate(tmp_path):
  model_dir = str(tmp_path / "nvdm")
  env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
  train = subprocess.run(
      [sys.executable, "-m", "tf_vmfvae.train", "--flagfile=configs/smoke_nvdm.flags",
       f"--model_dir={model_dir}"], cwd=ROOT, capture_output=True, text=True, timeout=600,
      env=env)
  assert train.returncode == 0, train.stderr[-3000:]
  evaluate = subprocess.run(
      [sys.executable, "-m", "tf_vmfvae.evaluate", f"--model_dir={model_dir}",
       "--num_importance_samples=10", "--max_batches=3"], cwd=ROOT, capture_output=True,
      text=True, timeout=600, env=env)
  assert evaluate.returncode == 0, evaluate.stderr[-3000:]
  assert "PPL (ELBO, per-doc: exp(mean NLL_d / N_d))" in evaluate.stdout
  assert "PPL (ELBO, corpus: exp(sum NLL / sum N))" in evaluate.stdout
  result = json.load(open(os.path.join(model_dir, "eval_test.json")))
  assert result["examples"] == 150 and result["iw_nll"] <= result["nll"] + 1e-3
  # Corpus level: exp(sum NLL / sum N), from the same numbers.
  assert result["ppl"] == pytest.approx(
      np.exp(result["nll"] * result["examples"] / result["tokens"]), rel=1e-5)


def test_kmeans_recovers_separated_clusters():
  from tf_vmfvae import topics_lib  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  points = np.concatenate([rng.normal([5, 0], 0.1, (30, 2)), rng.normal([0, 5], 0.1, (20, 2))])
  for spherical in (False, True):
    _, labels = topics_lib.kmeans(points, 2, spherical=spherical)
    assert sorted(np.bincount(labels).tolist()) == [20, 30]
    assert len(set(labels[:30])) == 1 and len(set(labels[30:])) == 1


@pytest.mark.skipif(not os.environ.get("TF_VMFVAE_DATA_DIR"), reason="needs ../shared/data")
def test_topics_cli_prints_readable_topics(tmp_path):
  from tf_vmfvae import train_lib  # pylint: disable=g-import-not-at-top
  experiment = config.ExperimentConfig(
      family="nvdm", data=config.DataConfig(dataset="20news"),
      model=dict(latent="vmf", concentration=50.0, latent_dim=8, hidden_dim=32),
      train=config.TrainConfig(optimizer="adam", learning_rate=0.003, batch_size=64,
                               log_latent_usage=False,
                               epochs=1, steps_per_epoch=20))
  train_lib.train(experiment, tmp_path, strategy=tf.distribute.get_strategy(), verbose=0)
  run = subprocess.run(
      [sys.executable, "-m", "tf_vmfvae.topics", f"--model_dir={tmp_path}", "--num_topics=4",
       "--num_words=6"], cwd=ROOT, capture_output=True, text=True, timeout=600,
      env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
  assert run.returncode == 0, run.stderr[-3000:]
  lines = [l for l in run.stdout.splitlines() if l.startswith("topic")]
  assert len(lines) == 4
  vocabulary = set(data.load_document_splits(config.DataConfig(dataset="20news"),
                                             splits=["test"]).vocabulary.words)
  for line in lines:
    words = line.split(": ", 1)[1].split()
    assert len(words) == 6 and set(words) <= vocabulary


def test_each_encoder_dropout_layer_draws_its_own_masks():
  model = NVDM(vocabulary_size=20, hidden_dim=8, latent_dim=4, encoder_layers=2, dropout=0.5,
               concentration=10.0, seed=3)
  ones = tf.ones([4, 8])
  first = model.encoder.get_layer("encoder_dropout_0")(ones, training=True)
  second = model.encoder.get_layer("encoder_dropout_1")(ones, training=True)
  assert not np.array_equal(first.numpy() == 0, second.numpy() == 0)


@pytest.mark.skipif(not os.environ.get("TF_VMFVAE_DATA_DIR"), reason="needs 20 Newsgroups")
def test_the_served_text_featurizer_gives_the_training_counts():
  """encode_text of a document written out as words sees the counts training saw."""
  from tf_vmfvae import export_lib  # pylint: disable=g-import-not-at-top
  splits = documents.load_document_splits(config.DataConfig(dataset="20news"),
                                          splits=["test"])
  test = splits.documents["test"]
  vocabulary_size = len(splits.vocabulary)
  model = NVDM(vocabulary_size, hidden_dim=8, encoder_layers=1, latent_dim=4, seed=0)
  serving = export_lib.NVDMServing(model, splits.vocabulary)
  rng = np.random.default_rng(0)
  index = rng.choice(len(test.ids), size=20, replace=False)
  texts, expected = [], np.zeros([len(index), vocabulary_size], np.float32)
  for row, d in enumerate(index):
    words = [splits.vocabulary.words[i] for i, c in zip(test.ids[d], test.counts[d])
             for _ in range(int(c))]
    rng.shuffle(words)  # A bag: the order does not matter.
    texts.append(" ".join(words + ["zzz-not-a-word"]))  # Unknown words are dropped.
    expected[row, test.ids[d]] = test.counts[d]
  counts = serving.counts_from_text(tf.constant(texts)).numpy()
  np.testing.assert_array_equal(counts, expected)
  np.testing.assert_allclose(serving.encode_text(tf.constant(texts))["mean_direction"],
                             serving.encode(tf.constant(expected))["mean_direction"],
                             rtol=1e-5, atol=1e-6)
