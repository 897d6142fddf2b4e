"""Bag-of-words corpora in the NVDM `.feat` format (20 Newsgroups, RCV1).

A `.feat` line is `label id:count id:count ...` with 1-based ids: line
numbers of the vocabulary file, whose lines are `word corpus_count`.
Documents are kept sparse (ids and counts) and made dense per batch, so a
large corpus such as RCV1 (794K documents x 10K words) fits in memory.
"""

import dataclasses
import logging
import math
import pathlib
from typing import Dict, List

import numpy as np
import tensorflow as tf

from tf_vmfvae import errors
from tf_vmfvae.data import pipeline
from tf_vmfvae.data import registry
from tf_vmfvae.data.text import CorpusError
from tf_vmfvae.data.text import iter_lines

logger = logging.getLogger("tf_vmfvae")


class WordList:
  """The vocabulary of a bag-of-words corpus: id i (0-based) is words[i]."""

  def __init__(self, words):
    self.words = list(words)

  def __len__(self):
    return len(self.words)

  def __eq__(self, other):
    return isinstance(other, WordList) and self.words == other.words

  def save(self, path):
    pathlib.Path(path).write_text("\n".join(self.words) + "\n", encoding="utf-8")

  @classmethod
  def load(cls, path):
    return cls(pathlib.Path(path).read_text(encoding="utf-8").splitlines())


def read_vocabulary(path):
  """Reads an NVDM vocabulary file (`word count` per line) into a WordList."""
  words = []
  for line_number, line in iter_lines(path):
    fields = line.split()
    if not fields:
      raise CorpusError(f"{path}:{line_number}: empty vocabulary line.")
    words.append(fields[0])
  return WordList(words)


@dataclasses.dataclass
class FeatStats:
  path: str
  lines: int = 0
  kept: int = 0
  empty_skipped: int = 0
  words: int = 0


@dataclasses.dataclass
class Documents:
  """Sparse documents: ids[d] (0-based) and counts[d], with labels."""
  ids: List[np.ndarray]
  counts: List[np.ndarray]
  labels: np.ndarray
  stats: FeatStats

  def subset(self, index):
    return Documents([self.ids[i] for i in index], [self.counts[i] for i in index],
                     self.labels[index], self.stats)


def read_feat(path, vocabulary_size):
  """Parses a `.feat` file.

  Args:
    path: str or Path.
    vocabulary_size: ids must lie in [1, vocabulary_size].

  Returns:
    `Documents`. Documents with no words are skipped and counted.

  Raises:
    FileNotFoundError, or CorpusError naming the file and line for a
    malformed pair, a bad label, an id out of range, a repeated id or a
    count < 1.
  """
  stats = FeatStats(path=str(path))
  ids, counts, labels = [], [], []
  for line_number, line in iter_lines(path):
    stats.lines += 1
    where = f"{path}:{line_number}"
    fields = line.split()
    if not fields:
      stats.empty_skipped += 1
      continue
    try:
      label = int(fields[0])
    except ValueError:
      raise CorpusError(f"{where}: the line must start with an integer label, got "
                        f"{fields[0]!r}.") from None
    doc_ids, doc_counts = [], []
    for pair in fields[1:]:
      word_id, sep, count = pair.partition(":")
      try:
        word_id, count = int(word_id), int(count)
      except ValueError:
        raise CorpusError(f"{where}: malformed pair {pair!r}; expected id:count.") from None
      if not sep:
        raise CorpusError(f"{where}: malformed pair {pair!r}; expected id:count.")
      if not 1 <= word_id <= vocabulary_size:
        raise CorpusError(f"{where}: word id {word_id} is outside [1, {vocabulary_size}] "
                          "(the vocabulary's lines).")
      if count < 1:
        raise CorpusError(f"{where}: count {count} of word id {word_id} must be >= 1.")
      doc_ids.append(word_id - 1)
      doc_counts.append(count)
    if not doc_ids:
      stats.empty_skipped += 1
      continue
    if len(set(doc_ids)) != len(doc_ids):
      raise CorpusError(f"{where}: a word id is repeated.")
    ids.append(np.asarray(doc_ids, np.int32))
    counts.append(np.asarray(doc_counts, np.float32))
    labels.append(label)
    stats.kept += 1
    stats.words += int(sum(doc_counts))
  logger.info("%s: %d lines, kept %d documents (%d words), skipped %d empty.",
              path, stats.lines, stats.kept, stats.words, stats.empty_skipped)
  return Documents(ids, counts, np.asarray(labels, np.int32), stats)


def document_dataset(documents, vocabulary_size, batch_size=50, shuffle=False, seed=None,
                     epoch=0):
  """Batches of {"counts": float32 [B, V]} dense word counts.

  A shuffled pass is a function of (`seed`, `epoch`), so a resumed run sees
  the order an uninterrupted one would.

  Example:
  >>> docs = Documents([np.array([0, 2])], [np.array([2.0, 1.0])], np.array([1]), None)
  >>> next(iter(document_dataset(docs, 4, batch_size=1)))["counts"].numpy().tolist()
  [[2.0, 0.0, 1.0, 0.0]]
  """
  if not documents.ids:
    raise errors.InvalidValueError("The split has no documents to batch.")
  lengths = [len(i) for i in documents.ids]
  ids = tf.RaggedTensor.from_row_lengths(np.concatenate(documents.ids), lengths)
  counts = tf.RaggedTensor.from_row_lengths(np.concatenate(documents.counts), lengths)
  if shuffle:
    order = np.random.default_rng([seed or 0, epoch]).permutation(len(lengths))
    ids, counts = tf.gather(ids, order), tf.gather(counts, order)
  dataset = tf.data.Dataset.from_tensor_slices({"ids": ids, "counts": counts})
  dataset = dataset.batch(batch_size)

  def densify(batch):
    ids, counts = batch["ids"], batch["counts"]
    rows = tf.cast(ids.value_rowids(), tf.int64)
    indices = tf.stack([rows, tf.cast(ids.flat_values, tf.int64)], axis=1)
    dense = tf.scatter_nd(indices, counts.flat_values,
                          tf.stack([tf.cast(ids.nrows(), tf.int64), vocabulary_size]))
    return {"counts": dense}

  dataset = dataset.map(densify, num_parallel_calls=tf.data.AUTOTUNE)
  dataset = dataset.apply(tf.data.experimental.assert_cardinality(
      math.ceil(len(lengths) / batch_size)))
  return pipeline.prefetched(dataset)


@dataclasses.dataclass
class DocumentSplits:
  """The splits of a bag-of-words corpus and its vocabulary."""
  vocabulary: WordList
  documents: Dict[str, Documents]
  num_labels: int = 0

  def dataset(self, split, batch_size, shuffle=False, seed=None, epoch=0, **unused):
    del unused  # Sentence-only options (bucketing).
    return document_dataset(self.documents[split], len(self.vocabulary), batch_size,
                            shuffle=shuffle, seed=seed, epoch=epoch)

  def num_tokens(self, split):
    return int(sum(c.sum() for c in self.documents[split].counts))

  def num_examples(self, split):
    return len(self.documents[split].ids)


def load_document_splits(data_config, splits=None):
  """Reads a `.feat` corpus; holds out a validation split from train.

  The validation split is `data_config.validation_fraction` of the train
  documents, drawn with `numpy.random.default_rng(data_config.validation_seed)`;
  "train" is the rest. "test" is the test file.
  """
  spec = registry.get_spec(data_config.dataset)
  if spec.format != "feat":
    raise errors.InvalidValueError(f"Dataset {spec.name!r} is not a bag-of-words corpus.")
  folder = registry.resolve(spec.name, data_config.data_dir)
  vocabulary = read_vocabulary(folder / spec.vocabulary_file)
  names = set(splits or ("train", "valid", "test"))
  documents = {}
  if names & {"train", "valid"}:
    full = read_feat(folder / spec.splits["train"], len(vocabulary))
    order = np.random.default_rng(data_config.validation_seed).permutation(len(full.ids))
    num_valid = int(round(len(order) * data_config.validation_fraction))
    documents["valid"] = full.subset(np.sort(order[:num_valid]))
    documents["train"] = full.subset(np.sort(order[num_valid:]))
  if "test" in names:
    documents["test"] = read_feat(folder / spec.splits["test"], len(vocabulary))
  return DocumentSplits(vocabulary, {k: v for k, v in documents.items() if k in names})
