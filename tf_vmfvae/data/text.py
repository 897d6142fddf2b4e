"""Line-per-sentence corpora: reading, statistics and the vocabulary.

Lines are split into words by `preprocessing.split_words`, the function the
SavedModel export uses too. Two formats:
- "sentences": one tokenized sentence per line (PTB);
- "labeled_sentences": `label w1 ... wn` per line, label an integer
  (Yelp: stars - 1, in 0..4).
"""

import collections
import dataclasses
import logging
import pathlib
from typing import List, Optional, Sequence

import numpy as np

from tf_vmfvae import errors
from tf_vmfvae.data import preprocessing

# The reserved tokens and ids of the featurizer (`preprocessing`), the first
# entries of every vocabulary.
SPECIALS = preprocessing.SPECIALS
PAD, UNK, BOS, EOS = SPECIALS
CONTROL_TOKENS = preprocessing.CONTROL_TOKENS
PAD_ID, UNK_ID = preprocessing.PAD_ID, preprocessing.UNK_ID
BOS_ID, EOS_ID = preprocessing.BOS_ID, preprocessing.EOS_ID
_SPLIT_CHUNK = 20000  # Lines split per TensorFlow call.


class CorpusError(errors.InvalidValueError):
  """A corpus file is malformed; the message names the file and line."""


def iter_lines(path):
  """Yields (line_number, text) of a UTF-8 file, 1-based.

  Raises:
    FileNotFoundError: the file does not exist.
    CorpusError: undecodable bytes, naming the file and line.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise errors.MissingFileError(f"Corpus file not found: {path}")
  with open(path, "rb") as f:
    for line_number, raw in enumerate(f, start=1):
      try:
        yield line_number, raw.decode("utf-8")
      except UnicodeDecodeError as error:
        raise CorpusError(f"{path}:{line_number}: not valid UTF-8 ({error}).") from None


@dataclasses.dataclass
class ReadStats:
  """What reading a corpus file kept, skipped and changed."""
  path: str
  lines: int = 0
  kept: int = 0
  empty_skipped: int = 0
  short_dropped: int = 0
  truncated: int = 0
  tokens: int = 0  # Kept words, without <eos>.

  def log(self, logger=logging):
    logger.info(
        "%s: %d lines, kept %d sentences (%d words + %d <eos>); skipped %d "
        "empty, dropped %d with fewer than the minimum words, truncated %d.",
        self.path, self.lines, self.kept, self.tokens, self.kept,
        self.empty_skipped, self.short_dropped, self.truncated)


@dataclasses.dataclass
class Corpus:
  """Tokenized sentences of one split, with optional integer labels."""
  sentences: List[List[str]]
  labels: Optional[np.ndarray]
  stats: ReadStats


def _split_lines(path, lowercase):
  """Yields (line_number, words) of a file, words split by `split_words`."""
  chunk = []

  def flush():
    words = preprocessing.split_words([line for _, line in chunk], lowercase).to_list()
    for (line_number, _), line_words in zip(chunk, words):
      yield line_number, [w.decode("utf-8") for w in line_words]
    chunk.clear()

  for item in iter_lines(path):
    chunk.append(item)
    if len(chunk) == _SPLIT_CHUNK:
      yield from flush()
  if chunk:
    yield from flush()


def read_corpus(path, labeled=False, min_words=2, max_len=None, num_labels=None,
                lowercase=False):
  """Reads a line-per-sentence file.

  Args:
    path: str or Path.
    labeled: bool. Lines are `label w1 ... wn` (the Yelp format).
    min_words: int. Sentences with fewer words are dropped and counted
      (the paper's code drops sentences under 2 words).
    max_len: int or None. Longer sentences are cut to `max_len` words and
      counted.
    num_labels: int or None. With `labeled`, labels must be in
      [0, num_labels).
    lowercase: bool. Case-fold the text (`preprocessing.split_words`).

  Returns:
    A `Corpus`.

  Raises:
    FileNotFoundError: the file does not exist.
    CorpusError: undecodable bytes or a bad label, naming file and line.
  """
  path = pathlib.Path(path)
  stats = ReadStats(path=str(path))
  sentences, labels = [], []
  for line_number, words in _split_lines(path, lowercase):
    stats.lines += 1
    if not words:
      stats.empty_skipped += 1
      continue
    if labeled:
      label_text, words = words[0], words[1:]
      try:
        label = int(label_text)
      except ValueError:
        raise CorpusError(f"{path}:{line_number}: the line must start with an integer "
                          f"label, got {label_text!r}.") from None
      if label < 0 or (num_labels is not None and label >= num_labels):
        raise CorpusError(f"{path}:{line_number}: label {label} is outside "
                          f"[0, {num_labels}).")
    if len(words) < min_words:
      stats.short_dropped += 1
      continue
    if max_len is not None and len(words) > max_len:
      words = words[:max_len]
      stats.truncated += 1
    sentences.append(words)
    if labeled:
      labels.append(label)
    stats.kept += 1
    stats.tokens += len(words)
  return Corpus(sentences=sentences,
                labels=np.asarray(labels, np.int32) if labeled else None,
                stats=stats)


class Vocabulary:
  """Word <-> id maps with reserved `<pad>`=0, `<unk>`=1, `<bos>`=2, `<eos>`=3.

  Saved as plain text, one token per line in id order (no pickle).

  Example:
  >>> vocab = Vocabulary.build([["a", "b", "a"], ["c", "a"]], max_size=6)
  >>> vocab.tokens
  ['<pad>', '<unk>', '<bos>', '<eos>', 'a', 'b']
  """

  def __init__(self, tokens: Sequence[str]):
    tokens = list(tokens)
    if tuple(tokens[:len(SPECIALS)]) != SPECIALS:
      raise errors.InvalidValueError(
          f"A vocabulary must start with {list(SPECIALS)}, got {tokens[:4]}.")
    if len(set(tokens)) != len(tokens):
      raise errors.InvalidValueError("A vocabulary must not repeat tokens.")
    self.tokens = tokens

  @classmethod
  def build(cls, sentences, max_size=None):
    """Most frequent words first (ties alphabetical), up to `max_size` ids."""
    if max_size is not None and max_size <= len(SPECIALS):
      raise errors.InvalidValueError(f"`max_size` must be > {len(SPECIALS)}, got {max_size}.")
    counts = collections.Counter(w for s in sentences for w in s)
    for special in SPECIALS:
      counts.pop(special, None)
    words = sorted(counts, key=lambda w: (-counts[w], w))
    if max_size is not None:
      words = words[:max_size - len(SPECIALS)]
    return cls(list(SPECIALS) + words)

  def __len__(self):
    return len(self.tokens)

  def preprocessor(self, lowercase=False, max_words=None):
    """The `preprocessing.TextPreprocessor` of this vocabulary: text -> ids.

    Literal `<pad>`, `<bos>` and `<eos>` in text are unknown words
    (`CONTROL_TOKENS`), in training and in the SavedModel alike.

    Example:
    >>> vocab = Vocabulary(list(SPECIALS) + ["cat"])
    >>> vocab.preprocessor().call(["the <pad> cat <eos>"]).to_list()
    [[1, 1, 4, 1]]
    """
    return preprocessing.TextPreprocessor(self.tokens, lowercase=lowercase,
                                          max_words=max_words,
                                          reserved_tokens=CONTROL_TOKENS)

  def __eq__(self, other):
    return isinstance(other, Vocabulary) and self.tokens == other.tokens

  def decode(self, ids, strip=True):
    """Ids to words; with `strip`, stops at <eos> and drops <pad>/<bos>."""
    words = []
    for i in ids:
      i = int(i)
      if strip and i == EOS_ID:
        break
      if strip and i in (PAD_ID, BOS_ID):
        continue
      words.append(self.tokens[i] if 0 <= i < len(self.tokens) else UNK)
    return words

  def save(self, path):
    pathlib.Path(path).write_text("\n".join(self.tokens) + "\n", encoding="utf-8")

  @classmethod
  def load(cls, path):
    text = pathlib.Path(path).read_text(encoding="utf-8")
    return cls(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"))
