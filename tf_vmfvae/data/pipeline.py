"""tf.data pipelines for sentence corpora: encode, bucket by length, batch.

Each batch is a dict of features:
  "tokens"          int32 [B, T]  w1 ... wn <eos>  (encoder input and targets)
  "decoder_tokens"  int32 [B, T]  <bos> w1 ... wn  (decoder input)
  "label"           int32 [B]     only for labelled corpora
padded with <pad> = 0, so a sentence's length (n + 1 tokens, <eos>
included) is the count of non-zero "tokens". Length bucketing keeps the padding small. The models
compute their own loss from these (the targets are "tokens"), so a batch is
all that `Model.fit` needs.
"""

import math

import numpy as np
import tensorflow as tf

from tf_vmfvae.data import text


def encode_corpus(corpus, vocabulary):
  """Returns (ids as a list of int32 arrays, labels or None)."""
  ids = [np.asarray(vocabulary.encode(s), np.int32) for s in corpus.sentences]
  return ids, corpus.labels


def _bucket_boundaries(max_length, width):
  return list(range(width, max_length + 1, width)) or [max_length]


def sentence_dataset(ids, labels=None, batch_size=20, shuffle=False, seed=None,
                     bucket_width=5, repeat=False):
  """Builds the batched `tf.data.Dataset` of a split.

  Args:
    ids: list of int arrays, one per sentence (words only, no <eos>).
    labels: int array [num_sentences] or None.
    batch_size: int, sentences per batch (global batch under a strategy).
    shuffle: bool. Reshuffle all sentences each epoch.
    seed: int or None, the shuffle seed.
    bucket_width: int. Sentences are batched with others whose length is in
      the same `bucket_width`-wide bucket; 0 disables bucketing.
    repeat: bool. Repeat forever (for step-based training).

  Returns:
    A `tf.data.Dataset` of feature dicts.

  Example:
  >>> ds = sentence_dataset([np.array([5, 6]), np.array([7])], batch_size=2,
  ...                       bucket_width=0)
  >>> batch = next(iter(ds))
  >>> batch["decoder_tokens"].numpy().tolist()
  [[2, 5, 6], [2, 7, 0]]
  >>> batch["tokens"].numpy().tolist()
  [[5, 6, 3], [7, 3, 0]]
  """
  if not ids:
    raise ValueError("The split has no sentences to batch.")
  if batch_size < 1:
    raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")
  lengths = np.array([len(s) for s in ids], np.int64)
  ragged = tf.RaggedTensor.from_row_lengths(
      np.concatenate(ids).astype(np.int32), lengths)
  elements = {"ids": ragged}
  if labels is not None:
    elements["label"] = np.asarray(labels, np.int32)
  dataset = tf.data.Dataset.from_tensor_slices(elements)
  if shuffle:
    dataset = dataset.shuffle(len(ids), seed=seed, reshuffle_each_iteration=True)
  if repeat:
    dataset = dataset.repeat()

  def to_example(element):
    words = element["ids"]
    features = {
        "tokens": tf.concat([words, [text.EOS_ID]], axis=0),
        "decoder_tokens": tf.concat([[text.BOS_ID], words], axis=0),
    }
    if "label" in element:
      features["label"] = element["label"]
    return features

  dataset = dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
  if bucket_width > 0:
    boundaries = _bucket_boundaries(int(lengths.max()) + 1, bucket_width)
    dataset = dataset.bucket_by_sequence_length(
        element_length_func=lambda f: tf.shape(f["tokens"])[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1))
    # Each bucket's size does not depend on the shuffle, so neither does the
    # number of batches. Declaring it matters: Keras runs one spurious step
    # (the optimizer's step counter moves) at the end of a dataset of
    # unknown cardinality.
    buckets = np.searchsorted(boundaries, lengths + 1, side="right")
    num_batches = int(sum(math.ceil(c / batch_size) for c in np.bincount(buckets) if c))
  else:
    dataset = dataset.padded_batch(batch_size)
    num_batches = math.ceil(len(ids) / batch_size)
  if not repeat:
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_batches))
  return dataset.prefetch(tf.data.AUTOTUNE)
