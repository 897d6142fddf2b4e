"""NVRNN: every decoder mode and latent builds, trains, saves and reloads."""

import gc
import weakref

import keras
from keras.src.saving import serialization_lib
import numpy as np
import pytest
import tensorflow as tf

from tf_vmfvae import latent
from tf_vmfvae import data
from tf_vmfvae.models import NVRNN
from tf_vmfvae.models import layers

VOCAB = 40
SMALL = dict(vocabulary_size=VOCAB, embedding_dim=8, hidden_dim=16, latent_dim=4,
             concentration=10.0, seed=1)


def _synthetic(num=64, labels=False):
  rng = np.random.default_rng(0)
  ids = [rng.integers(4, VOCAB, size=n).astype(np.int32) for n in rng.integers(2, 12, size=num)]
  label_array = rng.integers(0, 5, size=num).astype(np.int32) if labels else None
  return data.sentence_dataset(ids, label_array, batch_size=16, shuffle=True, seed=0)


VARIANTS = {
    "vmf_standard": dict(latent="vmf"),
    "vmf_inputless": dict(latent="vmf", decoder_mode="inputless"),
    "vmf_word_dropout": dict(latent="vmf", word_dropout=0.4),
    "vmf_learned": dict(latent="vmf_learned"),
    "power_spherical": dict(latent="power_spherical"),
    "gaussian_sigmoid": dict(latent="gaussian", kl_schedule="sigmoid"),
    "rnnlm": dict(latent="none"),
    "rnnlm_inputless": dict(latent="none", decoder_mode="inputless"),
    "bow": dict(latent="vmf", bow_conditioned=True),
    "label": dict(latent="vmf", num_labels=5),
    "bidirectional_2_layers": dict(latent="gaussian", bidirectional=True, encoder_layers=2),
    "vmf_tied": dict(latent="vmf", tie_embeddings=True),
    "vmf_inputless_tied": dict(latent="vmf", decoder_mode="inputless", tie_embeddings=True),
    "rnnlm_tied": dict(latent="none", tie_embeddings=True),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_trains_and_reloads(name, tmp_path):
  keras.utils.set_random_seed(0)  # Weights and batches alike, whatever ran before.
  kwargs = VARIANTS[name]
  model = NVRNN(**SMALL, **kwargs)
  model.compile(optimizer=keras.optimizers.Adam(0.01))
  dataset = _synthetic(labels="num_labels" in kwargs)
  history = model.fit(dataset, epochs=3, verbose=0).history
  assert np.all(np.isfinite(history["loss"]))
  assert history["recon"][-1] < history["recon"][0]  # It learns.
  # The loss is the negative ELBO (the Gaussian's KL is weighted by its schedule).
  if kwargs["latent"] == "none":
    np.testing.assert_allclose(history["loss"], history["recon"], rtol=1e-5)
  elif kwargs["latent"] != "gaussian":
    np.testing.assert_allclose(history["loss"], np.add(history["recon"], history["kl"]),
                               rtol=1e-4)
  batch = next(iter(dataset))
  z = None if model.latent is None else tf.ones([batch["tokens"].shape[0], 4]) / 2.0
  expected = model.decoder(model.decoder_inputs(batch, z))
  path = str(tmp_path / "m.keras")
  model.save(path)
  reloaded = keras.saving.load_model(path, safe_mode=True)
  np.testing.assert_array_equal(reloaded.decoder(reloaded.decoder_inputs(batch, z)), expected)
  assert reloaded.get_config() == model.get_config()


class _ReusedIds:
  """`id()` as CPython gives it when a freed object's memory is reused at once."""

  def __init__(self):
    self.live = {}  # number -> weak reference

  def __call__(self, obj):
    gc.collect()
    for number, ref in self.live.items():
      if ref() is obj:
        return number
    number = next(n for n in range(len(self.live) + 1)
                  if n not in self.live or self.live[n]() is None)
    self.live[number] = weakref.ref(obj)
    return number


def test_stacked_bidirectional_encoder_builds_while_keras_loads(monkeypatch):
  # `load_model` builds the model inside Keras' object-sharing scope, which
  # matches objects by `id()`; CI once reloaded a 2-layer encoder whose
  # directions had merged. Freed addresses are reused here on purpose.
  monkeypatch.setattr(serialization_lib, "id", _ReusedIds(), raising=False)
  with serialization_lib.ObjectSharingScope():
    model = NVRNN(**SMALL, latent="gaussian", bidirectional=True, encoder_layers=3)
  wrappers = [layer for layer in model.encoder.layers
              if isinstance(layer, keras.layers.Bidirectional)]
  directions = [(w.forward_layer, w.backward_layer) for w in wrappers]
  assert len(directions) == 3
  assert all(not f.go_backwards and b.go_backwards for f, b in directions)
  assert len({id(layer) for pair in directions for layer in pair}) == 6


def test_vmf_kl_stays_the_constant_while_training():
  model = NVRNN(**{**SMALL, "concentration": 35.0, "latent_dim": 50})
  model.compile(optimizer=keras.optimizers.SGD(1.0, global_clipnorm=0.25))
  history = model.fit(_synthetic(), epochs=3, verbose=0).history
  np.testing.assert_allclose(history["kl"], latent.vmf_kl_to_uniform(50, 35.0), rtol=1e-6)


def test_inputless_decoder_ignores_previous_words():
  model = NVRNN(**SMALL, decoder_mode="inputless", dropout=0.0)
  batch = next(iter(_synthetic()))
  z = tf.ones([batch["tokens"].shape[0], 4]) / 2.0
  shuffled = dict(batch, decoder_tokens=tf.where(batch["decoder_tokens"] > 0, 7, 0))
  np.testing.assert_allclose(model.decoder(model.decoder_inputs(batch, z)),
                             model.decoder(model.decoder_inputs(shuffled, z)), atol=1e-6)
  standard = NVRNN(**SMALL, dropout=0.0)
  assert not np.allclose(standard.decoder(standard.decoder_inputs(batch, z)),
                         standard.decoder(standard.decoder_inputs(shuffled, z)))


def test_tied_softmax_scores_against_the_input_embeddings():
  model = NVRNN(**SMALL, tie_embeddings=True, dropout=0.0)
  tied = NVRNN(**SMALL, dropout=0.0)
  # V x E shared, instead of a separate H x V matrix + V bias: E x H + E + V.
  assert model.count_params() - tied.count_params() == (8 * 16 + 8 + VOCAB) - (16 * VOCAB + VOCAB)
  batch = next(iter(_synthetic()))
  z = tf.ones([batch["tokens"].shape[0], 4]) / 2.0
  logits = model.decoder(model.decoder_inputs(batch, z))
  embedding = model.decoder.get_layer("embedding").embeddings
  embedding.assign(embedding * 2.0)  # Changing the input embeddings moves the logits.
  assert not np.allclose(model.decoder(model.decoder_inputs(batch, z)), logits)
  hidden = tf.random.normal([3, 16], seed=0)
  projected = model.decoder.get_layer("output_projection")(hidden)
  expected = (tf.matmul(projected, embedding, transpose_b=True)
              + model.decoder.get_layer("logits").bias)
  np.testing.assert_allclose(model.output_logits(hidden), expected, rtol=1e-5, atol=1e-6)


def test_word_dropout_replaces_words_with_unk_in_training_only():
  layer = layers.WordDropout(0.5, unk_id=1, seed=3)
  tokens = tf.constant(np.full((50, 20), 9, np.int32) * np.r_[np.ones(15), np.zeros(5)].astype(np.int32))
  dropped = layer(tokens, training=True).numpy()
  assert set(np.unique(dropped)) == {0, 1, 9}
  assert not dropped[:, 15:].any()  # Padding is never replaced.
  assert abs((dropped[:, :15] == 1).mean() - 0.5) < 0.05
  np.testing.assert_array_equal(layer(tokens, training=False), tokens)


def test_sequence_nll_ignores_padding():
  logits = tf.math.log(tf.constant([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]]))
  nll = layers.sequence_nll(tf.constant([[1, 1, 0]]), logits)
  assert float(nll[0]) == pytest.approx(-np.log(0.25) - np.log(0.8), rel=1e-5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(decoder_mode="teacher"), "`decoder_mode` must be one of"),
    (dict(word_dropout=1.0), "`word_dropout` must be in \\[0, 1\\)"),
    (dict(latent="laplace"), "`latent` must be one of"),
    (dict(vocabulary_size=3), "`vocabulary_size` must be an integer > 4"),
    (dict(hidden_dim=0), "`hidden_dim` must be an integer >= 1, got 0"),
])
def test_bad_arguments_raise(kwargs, match):
  with pytest.raises(ValueError, match=match):
    NVRNN(**{**SMALL, **kwargs})


def test_each_dropout_layer_draws_its_own_masks():
  """With one model seed, two same-shaped dropouts must not share masks."""
  model = NVRNN(**{**SMALL, "dropout": 0.5})
  ones = tf.ones([4, 6, SMALL["embedding_dim"]])
  encoder_mask = model.encoder.get_layer("encoder_dropout")(ones, training=True)
  decoder_mask = model.decoder.get_layer("decoder_dropout")(ones, training=True)
  assert not np.array_equal(encoder_mask.numpy() == 0, decoder_mask.numpy() == 0)
  # Still reproducible: the same seed gives the same masks.
  again = NVRNN(**{**SMALL, "dropout": 0.5}).encoder.get_layer("encoder_dropout")
  np.testing.assert_array_equal(again(ones, training=True).numpy(), encoder_mask.numpy())
