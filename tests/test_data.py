"""Corpus reading, vocabulary, pipeline, registry, and every bad-input case."""

import os

import numpy as np
import pytest

from tf_vmfvae import data
from tf_vmfvae.config import DataConfig
from tf_vmfvae.data import preprocessing
from tf_vmfvae.data import registry
from tf_vmfvae.data import text

SHARED_PTB = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "ptb")


def _write(path, content):
  path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
  return path


def test_read_corpus_counts_and_filters(tmp_path):
  path = _write(tmp_path / "c.txt", " a b c \n\n one \n a b c d e f \n   \n x y \n")
  corpus = text.read_corpus(path, min_words=2, max_len=4)
  assert corpus.sentences == [["a", "b", "c"], ["a", "b", "c", "d"], ["x", "y"]]
  stats = corpus.stats
  assert (stats.lines, stats.kept, stats.empty_skipped, stats.short_dropped,
          stats.truncated, stats.tokens) == (6, 3, 2, 1, 1, 9)
  assert corpus.labels is None


def test_read_missing_file_raises(tmp_path):
  with pytest.raises(FileNotFoundError, match="Corpus file not found: .*nope.txt"):
    text.read_corpus(tmp_path / "nope.txt")


def test_undecodable_bytes_name_file_and_line(tmp_path):
  path = _write(tmp_path / "bad.txt", b"good line here\nbad \xff\xfe bytes\n")
  with pytest.raises(text.CorpusError, match=r"bad.txt:2: not valid UTF-8"):
    text.read_corpus(path)


def test_yelp_format_labels(tmp_path):
  path = _write(tmp_path / "yelp.txt", "4 great food and service\n0 never again\n2 ok i guess so\n")
  corpus = text.read_corpus(path, labeled=True, num_labels=5)
  assert corpus.labels.tolist() == [4, 0, 2]
  assert corpus.sentences[1] == ["never", "again"]


@pytest.mark.parametrize("line,match", [("x bad label\n", "must start with an integer label, got 'x'"),
                                        ("7 out of range\n", "label 7 is outside")])
def test_yelp_bad_labels(tmp_path, line, match):
  path = _write(tmp_path / "yelp.txt", "1 fine line\n" + line)
  with pytest.raises(text.CorpusError, match=f"yelp.txt:2: .*{match}"):
    text.read_corpus(path, labeled=True, num_labels=5)


def test_vocabulary_build_unk_and_round_trip(tmp_path):
  vocab = text.Vocabulary.build([["b", "a", "a", "<unk>"], ["c", "a", "b"]], max_size=6)
  assert vocab.tokens == ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b"]
  ids = preprocessing.TextPreprocessor(vocab.tokens).encode_words([["a", "c", "zzz", "<unk>"]])
  assert ids[0].tolist() == [4, 1, 1, 1]
  assert vocab.decode([4, 5, 3, 4]) == ["a", "b"]
  vocab.save(tmp_path / "vocab.txt")
  assert (tmp_path / "vocab.txt").read_text().splitlines()[:4] == list(text.SPECIALS)
  assert text.Vocabulary.load(tmp_path / "vocab.txt") == vocab


def test_vocabulary_rejects_bad_tokens():
  with pytest.raises(ValueError, match="must start with"):
    text.Vocabulary(["a", "b"])
  with pytest.raises(ValueError, match="`max_size` must be > 4"):
    text.Vocabulary.build([["a"]], max_size=3)


def test_pipeline_eos_bos_padding_and_bucketing():
  rng = np.random.default_rng(0)
  ids = [rng.integers(4, 50, size=n).astype(np.int32) for n in rng.integers(2, 40, size=300)]
  dataset = data.sentence_dataset(ids, batch_size=16, shuffle=True, seed=1, bucket_width=5)
  seen, padding, total = 0, 0, 0
  for batch in dataset:
    tokens, decoder = batch["tokens"].numpy(), batch["decoder_tokens"].numpy()
    assert tokens.shape == decoder.shape
    lengths = (tokens != 0).sum(1)
    for row, dec, n in zip(tokens, decoder, lengths):
      assert row[n - 1] == text.EOS_ID and dec[0] == text.BOS_ID
      np.testing.assert_array_equal(dec[1:n], row[:n - 1])
      assert not row[n:].any()
    # Bucketing: lengths in a batch lie within one 5-wide bucket.
    assert lengths.max() - lengths.min() < 5
    padding += (tokens == 0).sum()
    total += tokens.size
    seen += len(tokens)
  assert seen == 300
  assert padding / total < 0.15
  # No autotuning thread to outlive an epoch's iterator (pipeline.prefetched).
  assert dataset.options().autotune.enabled is False


def test_pipeline_labels_and_bad_arguments():
  ds = data.sentence_dataset([np.array([5, 6]), np.array([7, 8])], labels=np.array([1, 3]),
                             batch_size=2, bucket_width=0)
  assert sorted(next(iter(ds))["label"].numpy().tolist()) == [1, 3]
  with pytest.raises(ValueError, match="no sentences"):
    data.sentence_dataset([], batch_size=2)
  with pytest.raises(ValueError, match="`batch_size` must be >= 1"):
    data.sentence_dataset([np.array([5])], batch_size=0)


def test_registry_resolution_order(tmp_path, monkeypatch):
  root = tmp_path / "root"
  (root / "ptb").mkdir(parents=True)
  for name in ("train.txt", "valid.txt", "test.txt"):
    _write(root / "ptb" / name, "a b\n")
  monkeypatch.setenv(registry.ENV_VAR, str(root))
  assert registry.resolve("ptb") == root / "ptb"
  explicit = tmp_path / "explicit"
  explicit.mkdir()
  with pytest.raises(registry.DatasetNotFoundError, match="--data_dir=.* does not hold"):
    registry.resolve("ptb", data_dir=str(explicit))
  with pytest.raises(ValueError, match="`dataset` must be one of"):
    registry.resolve("imdb")


def test_registry_offline_error_says_how_to_point_at_files(tmp_path, monkeypatch):
  monkeypatch.setenv(registry.ENV_VAR, str(tmp_path / "empty"))
  monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
  with pytest.raises(registry.DatasetNotFoundError) as error:
    registry.resolve("ptb", download=False)
  message = str(error.value)
  assert "--data_dir=" in message and registry.ENV_VAR in message
  assert str(tmp_path / "empty" / "ptb") in message
  with pytest.raises(registry.DatasetNotFoundError, match="cannot be downloaded automatically"):
    registry.resolve("rcv1")


def test_registry_download_checks_sha256(tmp_path, monkeypatch):
  # A file:// origin stands in for the network: the checksum must be verified.
  source = _write(tmp_path / "ptb.train.txt", "not the real ptb\n")
  spec = registry.DATASETS["ptb"]
  fake = registry.DatasetSpec(
      name="ptb", format=spec.format, splits=spec.splits,
      files={n: registry.RemoteFile("file://" + str(source), f.sha256)
             for n, f in spec.files.items()})
  monkeypatch.setitem(registry.DATASETS, "ptb", fake)
  monkeypatch.delenv(registry.ENV_VAR, raising=False)
  monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
  with pytest.raises(registry.DatasetNotFoundError, match="download failed"):
    registry.resolve("ptb")


@pytest.mark.skipif(not os.path.isdir(SHARED_PTB), reason="needs ../shared/data/ptb")
def test_real_ptb_statistics():
  splits = data.load_sentence_splits(DataConfig(dataset="ptb", data_dir=SHARED_PTB))
  # 9,999 types incl. <unk> (SOURCES.md) + 3 more reserved ids, less one word
  # that only occurs in a dropped one-word sentence.
  assert len(splits.vocabulary) == 10001
  # SOURCES.md: 42,068 / 3,370 / 3,761 lines; sentences under 2 words dropped.
  assert splits.stats["train"].lines == 42068 and splits.stats["train"].short_dropped == 137
  # Validation and test are scored whole: every line, none dropped or cut.
  assert len(splits.ids["test"]) == 3761 and len(splits.ids["valid"]) == 3370
  assert sum(len(s) + 1 for s in splits.ids["test"]) == 82430  # Tokens incl. <eos>.
  assert splits.stats["train"].truncated == 0  # Longest PTB sentence: 82 words.


@pytest.mark.parametrize("bucket_width", [0, 3, 5])
def test_pipeline_declares_its_true_number_of_batches(bucket_width):
  rng = np.random.default_rng(1)
  ids = [rng.integers(4, 50, size=n).astype(np.int32) for n in rng.integers(1, 30, size=257)]
  dataset = data.sentence_dataset(ids, batch_size=10, shuffle=True, seed=2,
                                  bucket_width=bucket_width)
  for _ in range(2):  # Two epochs, two different shuffles.
    assert sum(1 for _ in dataset) == int(dataset.cardinality())


def test_padding_to_the_bucket_edge_leaves_a_few_shapes_and_the_same_tokens():
  from tf_vmfvae.data import pipeline  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  ids = [rng.integers(4, 50, size=n) for n in rng.integers(1, 23, size=300)]
  plain = list(pipeline.sentence_dataset(ids, batch_size=16, bucket_width=5))
  padded = list(pipeline.sentence_dataset(ids, batch_size=16, bucket_width=5,
                                          pad_to_bucket_edge=True))
  assert len(plain) == len(padded)
  widths = {int(b["tokens"].shape[1]) for b in padded}
  assert widths <= {5, 10, 15, 20, 25}  # Lengths 1..22 plus <eos>: the bucket edges.
  assert len({int(b["tokens"].shape[1]) for b in plain}) > len(widths)
  for a, b in zip(plain, padded):
    for key in ("tokens", "decoder_tokens"):
      width = a[key].shape[1]
      np.testing.assert_array_equal(b[key][:, :width], a[key])
      assert not np.any(b[key][:, width:])  # Only padding added.
