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

import numpy as np
import tensorflow as tf

from tf_vmfvae import config
from tf_vmfvae import errors
from tf_vmfvae.data import preprocessing


def prefetched(dataset):
  """`dataset` prefetched, with tf.data's autotuning switched off.

  An autotuned iterator runs an optimisation thread that sleeps in periods
  doubling up to 60 s, and destroying the iterator waits for the current
  period to end. The trainer calls `fit` once an epoch, and each call drops
  its iterators: measured, every epoch lost up to 60 s that way (0-68 s,
  docs/PERFORMANCE.md, "The 60-second grid"). Without autotuning a parallel map
  runs one call per core and a prefetch sizes its buffer by TF's older
  heuristic; neither keeps a thread that outlives the iterator. Every
  dataset the zoo feeds to Keras ends here.

  Example:
  >>> prefetched(tf.data.Dataset.range(3)).options().autotune.enabled
  False
  """
  options = tf.data.Options()
  options.autotune.enabled = False
  return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def encode_corpus(corpus, preprocessor):
  """Returns (ids as a list of int32 arrays, labels or None).

  Args:
    corpus: a `text.Corpus`.
    preprocessor: the `preprocessing.TextPreprocessor` of the vocabulary (its
      lookup table is the one the SavedModel export uses).
  """
  return preprocessor.encode_words(corpus.sentences), corpus.labels


def batch_indices(lengths, batch_size, bucket_width=config.DataConfig.bucket_width, rng=None):
  """Groups sentence indices into batches of similar length.

  Sentences whose length falls in the same `bucket_width`-wide bucket are
  batched together (1, the default: sentences of one length, no padding;
  0: one bucket). With `rng`, the sentences are shuffled
  before they are grouped and the batches are shuffled after; without it,
  the order is deterministic (buckets in length order). Either way a batch
  that splits evenly over replicas goes first (see `_leading_batch`).

  Args:
    lengths: int array [num_sentences].
    batch_size: int >= 1.
    bucket_width: int >= 0.
    rng: a `numpy.random.Generator` or None.

  Returns:
    A list of int64 index arrays, each of at most `batch_size` sentences.

  Example:
  >>> [b.tolist() for b in batch_indices(np.array([1, 9, 2, 8]), 2, bucket_width=5)]
  [[0, 2], [1, 3]]
  """
  lengths = np.asarray(lengths, np.int64)
  order = np.arange(len(lengths)) if rng is None else rng.permutation(len(lengths))
  buckets = (lengths[order] // bucket_width if bucket_width > 0
             else np.zeros(len(order), np.int64))
  by_bucket = np.argsort(buckets, kind="stable")
  order, buckets = order[by_bucket], buckets[by_bucket]
  starts = np.flatnonzero(np.diff(buckets)) + 1
  batches = []
  for members in np.split(order, starts):
    batches.extend(np.split(members, range(batch_size, len(members), batch_size)))
  if rng is not None:
    batches = [batches[i] for i in rng.permutation(len(batches))]
  batches.insert(0, batches.pop(_leading_batch(batches, batch_size)))
  return batches


def _leading_batch(batches, batch_size):
  """Index of the batch that goes first.

  Keras' `fit` and `evaluate` under a distribution strategy average the
  first batch over the replicas to build the model, and fail unless every
  replica gets the same number of examples. Lead with a full batch, else
  with the largest batch whose size the most powers of two divide (replica
  counts are powers of two in practice).
  """
  multiple = batch_size & -batch_size  # The largest power of two dividing it.
  while multiple >= 1:
    candidates = [i for i, b in enumerate(batches) if len(b) % multiple == 0]
    if candidates:
      return max(candidates, key=lambda i: len(batches[i]))
    multiple //= 2
  return 0


def sentence_dataset(ids, labels=None, batch_size=20, shuffle=False, seed=None,
                     bucket_width=config.DataConfig.bucket_width, epoch=0,
                     pad_to_bucket_edge=False):
  """Builds the batched `tf.data.Dataset` of one pass over a split.

  Batches are grouped in NumPy (see `batch_indices`) and padded in one
  vectorized op per batch, so the pipeline does no per-sentence work. A
  shuffled pass is a function of (`seed`, `epoch`): the trainer builds each
  epoch's dataset with its epoch number, so a resumed run sees the same
  order as an uninterrupted one.

  Args:
    ids: list of int arrays, one per sentence (words only, no <eos>).
    labels: int array [num_sentences] or None.
    batch_size: int, sentences per batch (global batch under a strategy).
    shuffle: bool. Shuffle sentences and batches.
    seed: int or None, the shuffle seed (None: 0).
    bucket_width: int. Sentences are batched with others whose length is in
      the same `bucket_width`-wide bucket (1: of the same length, so no
      padding); 0 disables bucketing.
    epoch: int, which pass over the data (selects the shuffle).
    pad_to_bucket_edge: bool. Pad each batch to the longest length its
      bucket allows (a multiple of `bucket_width`, plus <eos>), not to its
      own longest sentence: a few batch shapes instead of one per length,
      for XLA, which compiles once per shape.

  Returns:
    A `tf.data.Dataset` of feature dicts with a known cardinality.

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
    raise errors.InvalidValueError("The split has no sentences to batch.")
  if batch_size < 1:
    raise errors.InvalidValueError(f"`batch_size` must be >= 1, got {batch_size}.")
  lengths = np.array([len(s) for s in ids], np.int64)
  rng = np.random.default_rng([seed or 0, epoch]) if shuffle else None
  batches = batch_indices(lengths, batch_size, bucket_width, rng)
  flat = np.concatenate(batches)
  words = tf.RaggedTensor.from_row_lengths(
      np.concatenate([ids[i] for i in flat]).astype(np.int32), lengths[flat])
  batch_sizes = np.array([len(b) for b in batches], np.int64)
  elements = {"ids": tf.RaggedTensor.from_row_lengths(words, batch_sizes)}
  if pad_to_bucket_edge:
    # Words + <eos>: a bucket's longest sentence has (bucket + 1) * width - 1 words.
    longest = np.array([lengths[b].max() for b in batches], np.int64)
    elements["width"] = ((longest // bucket_width + 1) * bucket_width if bucket_width > 0
                         else np.full_like(longest, lengths.max() + 1))
  if labels is not None:
    elements["label"] = tf.RaggedTensor.from_row_lengths(
        np.asarray(labels, np.int32)[flat], batch_sizes)

  def to_batch(element):
    features = preprocessing.frame_sentences(element["ids"], element.get("width"))
    if "label" in element:
      features["label"] = element["label"]
    return features

  dataset = tf.data.Dataset.from_tensor_slices(elements)
  return prefetched(dataset.map(to_batch, num_parallel_calls=tf.data.AUTOTUNE))
