"""The one text preprocessing: Python-equivalent splitting, and the same ids
in training (`load_sentence_splits`) and in the SavedModel's graph."""

import unicodedata

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_vmfvae import config
from tf_vmfvae import export_lib
from tf_vmfvae.data import loading
from tf_vmfvae.data import preprocessing
from tf_vmfvae.data import text
from tf_vmfvae.models import NVRNN

# Cased words, Unicode whitespace (no-break space, em space, tab), a
# compatibility character (the "fi" ligature), accents in two forms.
LINES = ["The Company said\u00a0it will buy N shares",
         "stocks\u2003FELL\tsharply on the ﬁnal day",
         "Caf\u00e9 and Cafe\u0301 are the same word after NFKC",
         "STRASSE Straße strasse"]


def _python_split(line, lowercase):
  line = unicodedata.normalize("NFKC", line)
  return (line.casefold() if lowercase else line).split()


@pytest.mark.parametrize("lowercase", [False, True])
def test_split_words_equals_python_normalize_casefold_split(lowercase):
  got = preprocessing.split_words(LINES + ["", " \t "], lowercase).to_list()
  got = [[w.decode("utf-8") for w in words] for words in got]
  assert got == [_python_split(line, lowercase) for line in LINES] + [[], []]


def test_layer_truncates_looks_up_and_round_trips_its_config():
  layer = preprocessing.TextPreprocessor(["<pad>", "<unk>", "the", "cat"], lowercase=True,
                                         max_words=3)
  assert layer(tf.constant(["THE cat sat down", ""])).to_list() == [[2, 3, 1], []]
  clone = preprocessing.TextPreprocessor.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
  assert keras.saving.get_registered_object("tf_vmfvae>TextPreprocessor") is (
      preprocessing.TextPreprocessor)
  with pytest.raises(ValueError, match="`max_words` must be >= 1 or None, got 0"):
    preprocessing.TextPreprocessor(["<pad>"], max_words=0)


@pytest.mark.parametrize("lowercase", [False, True])
def test_training_and_the_export_give_the_same_ids(tmp_path, lowercase):
  for split in ("train", "valid", "test"):
    (tmp_path / f"{split}.txt").write_text("\n".join(LINES) + "\n", encoding="utf-8")
  splits = loading.load_sentence_splits(
      config.DataConfig(dataset="ptb", data_dir=str(tmp_path), max_len=6, lowercase=lowercase))
  vocabulary = splits.vocabulary
  if lowercase:
    assert "strasse" in vocabulary.tokens and "Straße" not in vocabulary.tokens
  else:
    assert "The" in vocabulary.tokens and "the" in vocabulary.tokens
  model = NVRNN(vocabulary_size=len(vocabulary), embedding_dim=4, hidden_dim=4, latent_dim=3,
                concentration=5.0)
  serving = export_lib.NVRNNServing(model, vocabulary, lowercase=lowercase, max_words=6)
  tokens = serving.tokenize(tf.constant(LINES))["tokens"].numpy()
  for row, ids in zip(tokens, splits.ids["train"]):  # Cut to max_len as the export cuts.
    expected = list(ids) + [text.EOS_ID]
    np.testing.assert_array_equal(row[:len(expected)], expected)
    assert not row[len(expected):].any()
