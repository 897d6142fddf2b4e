"""Loads the splits of a registered sentence corpus into ids and datasets."""

import dataclasses
import logging
from typing import Dict, List, Optional

import numpy as np

from tf_vmfvae import config
from tf_vmfvae import errors
from tf_vmfvae.data import pipeline
from tf_vmfvae.data import registry
from tf_vmfvae.data import text

SENTENCE_FORMATS = ("sentences", "labeled_sentences")


@dataclasses.dataclass
class SentenceSplits:
  """The encoded splits of a sentence corpus and its vocabulary."""
  vocabulary: text.Vocabulary
  ids: Dict[str, List[np.ndarray]]
  labels: Dict[str, Optional[np.ndarray]]
  stats: Dict[str, text.ReadStats]
  num_labels: int = 0

  def dataset(self, split, batch_size, shuffle=False, seed=None,
              bucket_width=config.DataConfig.bucket_width, epoch=0,
              pad_to_bucket_edge=False):
    return pipeline.sentence_dataset(
        self.ids[split], self.labels[split], batch_size=batch_size, shuffle=shuffle,
        seed=seed, bucket_width=bucket_width, epoch=epoch,
        pad_to_bucket_edge=pad_to_bucket_edge)

  def num_examples(self, split):
    return len(self.ids[split])

  def num_tokens(self, split):
    """Tokens of a split including one <eos> per sentence (the PPL divisor)."""
    return int(sum(len(s) + 1 for s in self.ids[split]))


def load_sentence_splits(data_config, vocabulary=None, splits=None):
  """Reads, filters and encodes a sentence corpus.

  Args:
    data_config: a `tf_vmfvae.config.DataConfig`.
    vocabulary: a `Vocabulary` to reuse (a trained model's), or None to
      build one from the train split.
    splits: split names to load, default all of the dataset's.

  Returns:
    A `SentenceSplits`.
  """
  spec = registry.get_spec(data_config.dataset)
  if spec.format not in SENTENCE_FORMATS:
    raise errors.InvalidValueError(
        f"Dataset {spec.name!r} is not a sentence corpus (format {spec.format}).")
  folder = registry.resolve(spec.name, data_config.data_dir)
  labeled = spec.format == "labeled_sentences"
  num_labels = spec.num_labels if labeled else 0
  names = list(splits or spec.splits)
  if vocabulary is None and "train" not in names:
    names.insert(0, "train")
  corpora = {}
  for split in names:
    # Training may drop short and cut long sentences; validation and test are
    # scored whole: every sentence, at its full length.
    train = split == "train"
    corpus = text.read_corpus(
        folder / spec.splits[split], labeled=labeled,
        min_words=data_config.min_words if train else 1,
        max_len=data_config.max_len if train else None, num_labels=num_labels or None,
        lowercase=data_config.lowercase)
    corpus.stats.log(logging.getLogger("tf_vmfvae"))
    if not corpus.sentences:
      raise text.CorpusError(
          f"{folder / spec.splits[split]}: no sentence of at least {data_config.min_words} "
          f"words in {corpus.stats.lines} lines; the {split} split must not be empty.")
    corpora[split] = corpus
  if vocabulary is None:
    vocabulary = text.Vocabulary.build(corpora["train"].sentences, data_config.max_vocab_size)
  preprocessor = vocabulary.preprocessor(lowercase=data_config.lowercase)
  encoded = {s: pipeline.encode_corpus(c, preprocessor) for s, c in corpora.items()}
  return SentenceSplits(
      vocabulary=vocabulary,
      ids={s: e[0] for s, e in encoded.items()},
      labels={s: e[1] for s, e in encoded.items()},
      stats={s: c.stats for s, c in corpora.items()},
      num_labels=num_labels)
