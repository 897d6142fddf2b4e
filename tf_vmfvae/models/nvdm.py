"""NVDM: the bag-of-words document VAE of Miao et al. (2016) with any latent."""

import keras
import tensorflow as tf

from tf_vmfvae import config as config_lib
from tf_vmfvae import errors
from tf_vmfvae import latent as latent_lib
from tf_vmfvae.models import base
from tf_vmfvae.models import layers

NVDM_LATENTS = tuple(k for k in latent_lib.KINDS if k != "none")


@keras.saving.register_keras_serializable(package="tf_vmfvae")
class BagOfWordsReconstruction(keras.layers.Layer):
  """Adds -sum_w count_w log softmax(logits)_w per document (metric `recon`).

  Call arguments:
    counts: float [B, V] word counts.
    logits: float [B, V], or [n, B, V] for n latent draws: the
      reconstruction is then averaged over the draws.

  Returns:
    `logits` ([B, V]; the first draw's for [n, B, V]).
  """

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.recon_tracker = keras.metrics.Mean(name="recon")

  def call(self, counts, logits):
    nll = bag_of_words_nll(counts, logits)
    if len(logits.shape) == 3:
      nll, logits = tf.reduce_mean(nll, axis=0), logits[0]
    self.add_loss(latent_lib.batch_mean(nll))
    self.recon_tracker.update_state(nll)
    return logits


def bag_of_words_nll(counts, logits):
  """Per-document -sum_w count_w log p(w | z), float32 [B] (or [n, B])."""
  log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
  return -tf.reduce_sum(tf.cast(counts, tf.float32) * log_probs, axis=-1)


@keras.saving.register_keras_serializable(package="tf_vmfvae")
class NVDM(base.Model):
  """Neural Variational Document Model: MLP encoder -> z -> softmax decoder.

  The loss the model adds is -sum_w count_w log p(w|z) per document plus the
  latent's KL (metrics `recon` and `kl`); `fit` reports the negative ELBO
  per document. In the model's graph z is sampled.

  Args:
    vocabulary_size: int.
    hidden_dim: int, width of each encoder layer (paper: 400 on 20NG, 800
      on RCV1).
    encoder_layers: int (paper: 2), tanh MLP layers.
    latent_dim: int (paper: 25 / 50 / 200).
    latent: "vmf" | "vmf_learned" | "power_spherical" | "gaussian".
    concentration: float, fixed k (paper: 100 for d=25, 150 for d=50/200).
    kl_schedule, free_bits, min_concentration, max_concentration, sampler:
      as in `tf_vmfvae.latent.make_latent`.
    decoder_hidden_dim: int, 0 for Miao et al.'s softmax(R z + b) decoder;
      > 0 adds a hidden layer (the paper's code: 400, ReLU).
    decoder_activation: activation of that hidden layer ("relu", as in the
      paper's code, "tanh", ...: any `keras.activations` name).
    dropout: float, dropout on the encoder's input and hidden layers
      (paper: 0.1).
    reconstruction_draws: int >= 1, latent draws per document in training,
      their reconstructions averaged (the paper's code: 3). Each draw's is
      an unbiased estimate, so the objective is still the ELBO, with less
      variance. Saved configs with its old name, `decode_samples`, still
      load.
    seed: int or None.
    **kwargs: `keras.Model` arguments.

  Inputs: {"counts": float [B, vocabulary_size]}.
  Outputs: word logits [B, vocabulary_size].

  Example:
  >>> model = NVDM(vocabulary_size=20, hidden_dim=8, latent_dim=4, concentration=10.0)
  >>> model({"counts": tf.ones([2, 20])}).shape
  TensorShape([2, 20])

  References:
    Miao et al. (2016), https://arxiv.org/abs/1511.06038.
    Xu & Durrett (2018), https://arxiv.org/abs/1808.10805, Section 5.
  """

  def __init__(self, vocabulary_size, hidden_dim=400, encoder_layers=2, latent_dim=25,
               latent="vmf", concentration=100.0, kl_schedule="constant", free_bits=0.0,
               min_concentration=1.0, max_concentration=500.0, decoder_hidden_dim=0,
               decoder_activation="tanh", dropout=0.1, reconstruction_draws=1, sampler="wood",
               seed=None,
               **kwargs):
    for name, value in (("vocabulary_size", vocabulary_size), ("hidden_dim", hidden_dim),
                        ("encoder_layers", encoder_layers)):
      if not isinstance(value, int) or value < 1:
        raise errors.InvalidValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
    if not isinstance(reconstruction_draws, int) or reconstruction_draws < 1:
      raise errors.InvalidValueError(
          f"`reconstruction_draws` must be an integer >= 1, got {reconstruction_draws!r}.")
    if latent not in NVDM_LATENTS:
      raise errors.InvalidValueError(
          f"`latent` must be one of {list(NVDM_LATENTS)}, got {latent!r}.")
    if not isinstance(decoder_hidden_dim, int) or decoder_hidden_dim < 0:
      raise errors.InvalidValueError(
          f"`decoder_hidden_dim` must be an integer >= 0, got "
          f"{decoder_hidden_dim!r}.")
    try:
      keras.activations.get(decoder_activation)
    except ValueError:
      raise errors.InvalidValueError(
          "`decoder_activation` must name a Keras activation, got "
          f"{decoder_activation!r}.") from None

    # === Layers ===
    latent_layer = latent_lib.make_latent(
        latent, latent_dim, concentration=concentration, kl_schedule=kl_schedule,
        free_bits=free_bits, min_concentration=min_concentration,
        max_concentration=max_concentration, seed=seed, sampler=sampler)

    # === Encoder: counts -> features ===
    counts = keras.Input((vocabulary_size,), name="counts")
    x = counts
    for i in range(encoder_layers):
      x = keras.layers.Dropout(dropout, seed=layers.stream_seed(seed, 1 + i),
                               name=f"encoder_dropout_{i}")(x)
      x = keras.layers.Dense(hidden_dim, activation="tanh", name=f"encoder_{i}")(x)
    encoder = keras.Model(counts, {"features": x}, name="encoder")

    # === Decoder: z -> word logits ===
    z = keras.Input((latent_dim,), name="z")
    y = z
    if decoder_hidden_dim:
      y = keras.layers.Dense(decoder_hidden_dim, activation=decoder_activation,
                             name="decoder_hidden")(y)
    logits = keras.layers.Dense(vocabulary_size, name="logits")(y)
    decoder = keras.Model({"z": z}, logits, name="decoder")

    # === Functional model ===
    features = encoder(counts)["features"]
    if reconstruction_draws == 1:
      logits = decoder({"z": latent_layer(features, sample=True)})
    else:  # n draws per document, decoded as one batch of n * B.
      draws = latent_layer(features, sample=True, num_samples=reconstruction_draws)
      logits = keras.ops.reshape(decoder({"z": keras.ops.reshape(draws, (-1, latent_dim))}),
                                 (reconstruction_draws, -1, vocabulary_size))
    outputs = BagOfWordsReconstruction(name="reconstruction")(counts, logits)
    super().__init__(inputs={"counts": counts}, outputs=outputs, **kwargs)

    # === Config ===
    self.vocabulary_size = vocabulary_size
    self.hidden_dim = hidden_dim
    self.encoder_layers = encoder_layers
    self.latent_dim = latent_dim
    self.latent_kind = latent
    self.concentration = concentration
    self.kl_schedule = kl_schedule
    self.free_bits = free_bits
    self.min_concentration = min_concentration
    self.max_concentration = max_concentration
    self.sampler = sampler
    self.decoder_hidden_dim = decoder_hidden_dim
    self.decoder_activation = decoder_activation
    self.dropout = dropout
    self.reconstruction_draws = reconstruction_draws
    self.seed = seed
    self.encoder = encoder
    self.latent = latent_layer
    self.decoder = decoder

  # Analysis API shared with NVRNN (used by the evaluator).
  def encode_features(self, batch, training=False):
    return self.encoder(batch["counts"], training=training)["features"]

  def reconstruction_nll(self, batch, z, training=False):
    return bag_of_words_nll(batch["counts"], self.decoder({"z": z}, training=training))

  def reconstruction_nll_of_draws(self, batch, draws):
    """-log p(x|z) averaged over draws [n, B, d] of q, per document [B].

    The paper's protocol (3 draws), as in training with `reconstruction_draws`:
    an unbiased estimate of the ELBO's reconstruction term.
    """
    n, b = tf.shape(draws)[0], tf.shape(draws)[1]
    logits = self.decoder({"z": tf.reshape(draws, [n * b, self.latent_dim])})
    logits = tf.reshape(logits, [n, b, self.vocabulary_size])
    return tf.reduce_mean(bag_of_words_nll(batch["counts"], logits), axis=0)

  @property
  def protocol_draws(self):
    """n of the paper's protocol this model trained with (`reconstruction_draws`)."""
    return self.reconstruction_draws

  def num_tokens(self, batch):
    return tf.reduce_sum(batch["counts"], axis=-1)

  def get_config(self):
    return {
        "name": self.name, "trainable": self.trainable,
        "vocabulary_size": self.vocabulary_size, "hidden_dim": self.hidden_dim,
        "encoder_layers": self.encoder_layers, **latent_lib.latent_config(self),
        "decoder_hidden_dim": self.decoder_hidden_dim,
        "decoder_activation": self.decoder_activation, "dropout": self.dropout,
        "reconstruction_draws": self.reconstruction_draws, "seed": self.seed,
    }

  @classmethod
  def from_config(cls, config):
    return cls(**config_lib.upgrade_model_arguments("nvdm", config))
