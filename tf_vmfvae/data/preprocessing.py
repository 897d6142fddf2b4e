"""The one text preprocessing of training and serving: normalise, split, look up.

Training reads its corpora through `split_words` and encodes them with a
`TextPreprocessor`; the SavedModel export puts the same layer in its graph.
So a sentence is cut into the same words and the same ids in both places,
whatever its case or Unicode form.

The ops come from tensorflow-text (`normalize_utf8`, `case_fold_utf8`,
`WhitespaceTokenizer`): they handle Unicode whitespace and case the way
Python's `str.split` and `str.casefold` do (core TensorFlow's
`tf.strings.split` splits on ASCII whitespace only), and the stock
TensorFlow Serving model server links them in, so an exported model serves
without custom ops. A Python process that loads such a SavedModel must
`import tensorflow_text` first (it registers the ops).
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from tf_vmfvae import errors

# The reserved tokens, ids 0..3 of every sentence vocabulary, and their ids;
# tf_vmfvae.data.text takes them from here.
SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(len(SPECIALS))
# Ids that text never produces: the same strings in a sentence are unknown words.
CONTROL_TOKENS = tuple(SPECIALS[i] for i in (PAD_ID, BOS_ID, EOS_ID))

_TOKENIZER = tf_text.WhitespaceTokenizer()


def split_words(texts, lowercase=False):
  """Splits strings into words: NFKC, optional case folding, Unicode whitespace.

  Args:
    texts: string tensor or list [N].
    lowercase: bool. Case-fold (Unicode lowercasing: "Straße" -> "strasse").

  Returns:
    A ragged string tensor [N, (words)].

  Example:
  >>> split_words(["The  cat\u00a0SAT", ""]).to_list()
  [[b'The', b'cat', b'SAT'], []]
  >>> split_words(["The  cat\u00a0SAT"], lowercase=True).to_list()
  [[b'the', b'cat', b'sat']]
  """
  texts = tf_text.normalize_utf8(tf.convert_to_tensor(texts, tf.string), "NFKC")
  if lowercase:
    texts = tf_text.case_fold_utf8(texts)
  return _TOKENIZER.tokenize(texts)


@keras.saving.register_keras_serializable(package="tf_vmfvae")
class TextPreprocessor(keras.layers.Layer):
  """Raw strings -> word ids, the same in training and in the SavedModel.

  Normalises (NFKC, optional case folding), splits on Unicode whitespace,
  keeps the first `max_words` words and looks each up in `vocabulary`.

  Args:
    vocabulary: list of str. The words in id order.
    lowercase: bool. Case-fold before the lookup (`split_words`).
    max_words: int or None. Words kept per string.
    oov_id: int. The id of a word missing from `vocabulary`.
    reserved_tokens: entries of `vocabulary` that text never produces (the
      control tokens `<pad>`, `<bos>`, `<eos>`): the same string in user
      text is an unknown word (`oov_id`), so it cannot break the padding or
      the framing.

  Call arguments:
    texts: string tensor [N].

  Returns:
    A ragged int32 tensor [N, (words)].

  Example:
  >>> layer = TextPreprocessor(["<pad>", "<unk>", "the", "cat"], lowercase=True,
  ...                          max_words=3)
  >>> layer.call(tf.constant(["The cat sat down", ""])).to_list()
  [[2, 3, 1], []]
  >>> TextPreprocessor(["<pad>", "<unk>", "cat"], reserved_tokens=["<pad>"]).call(
  ...     tf.constant(["cat <pad> <unk>"])).to_list()
  [[2, 1, 1]]
  """

  def __init__(self, vocabulary, lowercase=False, max_words=None, oov_id=UNK_ID,
               reserved_tokens=(), **kwargs):
    kwargs.setdefault("trainable", False)
    super().__init__(**kwargs)
    if max_words is not None and max_words < 1:
      raise errors.InvalidValueError(f"`max_words` must be >= 1 or None, got {max_words}.")
    self.vocabulary = list(vocabulary)
    self.lowercase = lowercase
    self.max_words = max_words
    self.oov_id = oov_id
    self.reserved_tokens = list(reserved_tokens)
    reserved = set(self.reserved_tokens)
    keys = [(word, i) for i, word in enumerate(self.vocabulary) if word not in reserved]
    self.table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant([w for w, _ in keys], tf.string),
            tf.constant([i for _, i in keys], tf.int32)),
        default_value=oov_id)
    self.built = True

  def split(self, texts):
    """[N] strings -> ragged [N, (words)] strings, at most `max_words` each."""
    words = split_words(texts, self.lowercase)
    return words if self.max_words is None else words[:, :self.max_words]

  def lookup(self, words):
    """Ragged words -> ragged int32 ids (`oov_id` for unknown words)."""
    return tf.ragged.map_flat_values(self.table.lookup, words)

  def call(self, texts):
    return self.lookup(self.split(texts))

  def encode_words(self, sentences):
    """Already split sentences (lists of str) -> a list of int32 arrays.

    What `call` does after splitting, for corpora read by `split_words`.
    """
    lengths = np.fromiter((len(s) for s in sentences), np.int64, len(sentences))
    flat = [w for s in sentences for w in s]
    ids = self.table.lookup(tf.constant(flat, tf.string)).numpy() if flat else np.zeros(
        [0], np.int32)
    return np.split(ids.astype(np.int32), np.cumsum(lengths)[:-1]) if sentences else []

  def get_config(self):
    config = super().get_config()
    config.update(vocabulary=self.vocabulary, lowercase=self.lowercase,
                  max_words=self.max_words, oov_id=self.oov_id,
                  reserved_tokens=self.reserved_tokens)
    return config


def frame_sentences(ids, width=None):
  """The model's inputs of a batch of sentences: <eos> after, <bos> before.

  Args:
    ids: int32 ragged tensor [B, (words)] of word ids (a `TextPreprocessor`'s
      output, or a corpus's).
    width: None (pad to the longest sentence) or an int32 scalar tensor >=
      the longest length + 1: the padded width.

  Returns:
    {"tokens": words then <eos>, "decoder_tokens": <bos> then words}, int32
    [B, width], padded with PAD_ID: what training and the SavedModel feed.

  Example:
  >>> frame_sentences(tf.ragged.constant([[5, 6], [7], []]))["tokens"].numpy().tolist()
  [[5, 6, 3], [7, 3, 0], [3, 0, 0]]
  """
  rows = tf.cast(ids.nrows(), tf.int32)
  # One <eos> and one <bos> per row, an empty sentence's too.
  eos, bos = (tf.RaggedTensor.from_tensor(tf.fill([rows, 1], tf.cast(i, ids.dtype)))
              for i in (EOS_ID, BOS_ID))
  shape = None if width is None else tf.stack([rows, tf.cast(width, tf.int32)])
  return {"tokens": tf.concat([ids, eos], axis=1).to_tensor(PAD_ID, shape=shape),
          "decoder_tokens": tf.concat([bos, ids], axis=1).to_tensor(PAD_ID, shape=shape)}
