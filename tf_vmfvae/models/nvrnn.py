"""NVRNN: the LSTM sentence VAE of Bowman et al. (2016) with any latent."""

import keras
import tensorflow as tf

from tf_vmfvae import config as config_lib
from tf_vmfvae import errors
from tf_vmfvae import latent as latent_lib
from tf_vmfvae.models import base
from tf_vmfvae.data import text
from tf_vmfvae.models import layers
from tf_vmfvae.models import lstm as lstm_lib

DECODER_MODES = config_lib.DECODER_MODES


def _conditioning_parts(z, bow, label_vector):
  """What the decoder is fed at every step besides the previous word, in order."""
  return [part for part in (z, bow, label_vector) if part is not None]


def _check(condition, name, value, requirement):
  if not condition:
    raise errors.InvalidValueError(f"`{name}` must be {requirement}, got {value!r}.")


@keras.saving.register_keras_serializable(package="tf_vmfvae")
class NVRNN(base.Model):
  """The Neural Variational RNN: LSTM encoder -> latent z -> LSTM decoder.

  The decoder's initial state is a linear map of z, and z (with the BoW
  vector and the label embedding, when enabled) is fed at every step. The
  model adds its own loss: the per-sentence reconstruction NLL (metric
  `recon`) plus the latent's KL (metric `kl`); the loss `fit` reports is
  the negative ELBO per sentence. In the model's graph z is always sampled
  (so `evaluate` estimates the ELBO with one sample); `encoder`, `latent`
  and `decoder` give the pieces for analysis.

  Args:
    vocabulary_size: int, including the 4 reserved ids.
    embedding_dim: int (paper: 100). Shared by encoder and decoder.
    hidden_dim: int (paper: 400), LSTM width of encoder and decoder.
    latent_dim: int (paper: 50).
    latent: "vmf" | "vmf_learned" | "power_spherical" | "gaussian" | "none"
      ("none" is the RNNLM baseline: no encoder, no z).
    concentration: float, fixed k of the spherical latents (paper: 80
      Inputless, 35 Standard).
    kl_schedule, free_bits: Gaussian KL annealing and floor.
    min_concentration, max_concentration: range of a learned k.
    sampler: "wood" or "table": how a fixed-concentration vMF is sampled
      (`tf_vmfvae.latent.make_latent`).
    encoder_layers: int, stacked encoder LSTMs.
    bidirectional: bool, a bidirectional encoder.
    decoder_mode: "standard" (the previous word is fed) or "inputless"
      (only z and the conditioning are fed).
    word_dropout: float in [0, 1), Standard mode only: previous words are
      replaced by <unk> with this probability in training.
    bow_conditioned: bool. NVRNN-BoW: the mean input word embedding is
      also fed to the decoder at every step (the paper's Table 5).
    num_labels: int. > 0 conditions the decoder on an input "label"
      embedded in `label_dim` dimensions (Yelp ratings: 5).
    label_dim: int (paper: 50).
    dropout: float, dropout on embeddings and decoder outputs (paper: 0.5).
    tie_embeddings: bool. False (the paper): the softmax has its own
      [hidden_dim, vocabulary_size] weights. True: the decoder output is
      projected to `embedding_dim` and scored against the input embeddings
      (Press & Wolf 2017; Inan et al. 2017), plus a bias: 4x fewer softmax
      FLOPs at the paper's sizes (100 vs 400), 3M fewer parameters.
    decode_mean_of: int >= 1. The training protocol: 1 (default) decodes
      one z ~ q, the true ELBO; n > 1 decodes the (unnormalised) mean of n
      draws, as the paper's code does with 3, still charging one KL: that
      is not a bound (see `reconstruction_nll_of_draws`). Saved configs
      with its old name, `decode_samples`, still load.
    seed: int or None, seeds the sampler and, one stream each, the dropouts.
    **kwargs: `keras.Model` arguments (name, dtype).

  Inputs: a dict with "tokens" [B, T] (w1 .. wn <eos>), "decoder_tokens"
  [B, T] (<bos> w1 .. wn) and, with `num_labels`, "label" [B].

  Outputs: next-word logits [B, T, vocabulary_size].

  Example:
  >>> model = NVRNN(vocabulary_size=30, embedding_dim=8, hidden_dim=16,
  ...               latent_dim=4, concentration=10.0)
  >>> batch = {"tokens": tf.constant([[5, 6, 3]]),
  ...          "decoder_tokens": tf.constant([[2, 5, 6]])}
  >>> model(batch).shape
  TensorShape([1, 3, 30])

  References:
    Bowman et al. (2016), https://arxiv.org/abs/1511.06349.
    Xu & Durrett (2018), https://arxiv.org/abs/1808.10805.
  """

  def __init__(self, vocabulary_size, embedding_dim=100, hidden_dim=400, latent_dim=50,
               latent="vmf", concentration=80.0, kl_schedule="constant", free_bits=0.0,
               min_concentration=1.0, max_concentration=500.0, encoder_layers=1,
               bidirectional=False, decoder_mode="standard", word_dropout=0.0,
               bow_conditioned=False, num_labels=0, label_dim=50, dropout=0.5,
               tie_embeddings=False, decode_mean_of=1, sampler="wood", seed=None, **kwargs):
    _check(isinstance(vocabulary_size, int) and vocabulary_size > len(text.SPECIALS),
           "vocabulary_size", vocabulary_size, f"an integer > {len(text.SPECIALS)}")
    for name, value in (("embedding_dim", embedding_dim), ("hidden_dim", hidden_dim),
                        ("encoder_layers", encoder_layers), ("label_dim", label_dim)):
      _check(isinstance(value, int) and value >= 1, name, value, "an integer >= 1")
    _check(decoder_mode in DECODER_MODES, "decoder_mode", decoder_mode,
           f"one of {list(DECODER_MODES)}")
    _check(isinstance(word_dropout, (int, float)) and 0.0 <= word_dropout < 1.0,
           "word_dropout", word_dropout, "in [0, 1) (use decoder_mode='inputless' for 1)")
    _check(isinstance(num_labels, int) and num_labels >= 0, "num_labels", num_labels,
           "an integer >= 0")
    _check(isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0, "dropout", dropout,
           "in [0, 1)")
    _check(latent in latent_lib.KINDS, "latent", latent, f"one of {list(latent_lib.KINDS)}")
    _check(isinstance(decode_mean_of, int) and decode_mean_of >= 1, "decode_mean_of",
           decode_mean_of, "an integer >= 1")

    # === Layers ===
    embedding_class = (layers.TiedEmbedding if tie_embeddings
                       else keras.layers.Embedding)
    embedding = embedding_class(vocabulary_size, embedding_dim, mask_zero=True,
                                name="embedding")
    latent_layer = latent_lib.make_latent(
        latent, latent_dim, concentration=concentration, kl_schedule=kl_schedule,
        free_bits=free_bits, min_concentration=min_concentration,
        max_concentration=max_concentration, seed=seed, sampler=sampler)
    word_dropout_layer = (layers.WordDropout(word_dropout, unk_id=text.UNK_ID,
                                             seed=layers.stream_seed(seed, 4),
                                             name="word_dropout")
                          if word_dropout > 0 and decoder_mode == "standard" else None)
    label_embedding = (keras.layers.Embedding(num_labels, label_dim, name="label_embedding")
                       if num_labels else None)

    # === Encoder: tokens -> features h (and the BoW vector) ===
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    embedded = embedding(tokens)
    encoder_outputs = {}
    if latent_layer is not None:
      x = keras.layers.Dropout(dropout, seed=layers.stream_seed(seed, 1),
                               name="encoder_dropout")(embedded)
      # `Bidirectional` copies its layer through a serialization round trip.
      # While `load_model` runs, Keras matches serialized objects by `id()`, so
      # a copied layer freed before the next one is made can lend it its
      # address, and the next `Bidirectional` gets the old copy back (both
      # directions alike). The copied layers live until the model is built.
      copied = []
      for i in range(encoder_layers):
        last = i == encoder_layers - 1
        lstm = lstm_lib.FusedLSTM(hidden_dim, return_sequences=not last,
                                 name=f"encoder_lstm_{i}")
        if bidirectional:
          copied.append(lstm)
          lstm = keras.layers.Bidirectional(lstm, name=f"encoder_bilstm_{i}")
        x = lstm(x)
      encoder_outputs["features"] = x
    if bow_conditioned:
      encoder_outputs["bow"] = layers.MaskedMean(name="bow")(embedded)
    encoder = (keras.Model(tokens, encoder_outputs, name="encoder")
               if encoder_outputs else None)

    # === Decoder: decoder tokens, z, conditioning -> logits ===
    decoder_tokens = keras.Input((None,), dtype="int32", name="decoder_tokens")
    decoder_inputs = {"decoder_tokens": decoder_tokens}
    if latent_layer is not None:
      decoder_inputs["z"] = keras.Input((latent_dim,), name="z")
    if bow_conditioned:
      decoder_inputs["bow"] = keras.Input((embedding_dim,), name="bow")
    if num_labels:
      decoder_inputs["label"] = keras.Input((), dtype="int32", name="label")
    conditioning = _conditioning_parts(
        decoder_inputs.get("z"), decoder_inputs.get("bow"),
        label_embedding(decoder_inputs["label"]) if num_labels else None)
    vector = (None if not conditioning else conditioning[0] if len(conditioning) == 1
              else keras.layers.Concatenate(name="conditioning")(conditioning))
    steps = [layers.TileOverTime(name="tile_conditioning")(decoder_tokens, vector)]
    if decoder_mode == "standard":
      previous = decoder_tokens
      if word_dropout_layer is not None:
        previous = word_dropout_layer(previous)
      previous = embedding(previous)
      previous = keras.layers.Dropout(dropout, seed=layers.stream_seed(seed, 2),
                                        name="decoder_dropout")(previous)
      steps.insert(0, previous)
    step_inputs = (steps[0] if len(steps) == 1
                   else keras.layers.Concatenate(name="step_inputs")(steps))
    initial_state = None
    initial_h = initial_c = None
    if latent_layer is not None:
      initial_h = keras.layers.Dense(hidden_dim, name="initial_h")
      initial_c = keras.layers.Dense(hidden_dim, name="initial_c")
      initial_state = [initial_h(decoder_inputs["z"]), initial_c(decoder_inputs["z"])]
    decoder_lstm = lstm_lib.FusedLSTM(hidden_dim, return_sequences=True, name="decoder_lstm")
    hidden = decoder_lstm(step_inputs, initial_state=initial_state)
    hidden = keras.layers.Dropout(dropout, seed=layers.stream_seed(seed, 3),
                                name="output_dropout")(hidden)
    output_projection = (keras.layers.Dense(embedding_dim, name="output_projection")
                         if tie_embeddings else None)
    if tie_embeddings:
      output_bias = layers.Bias(name="logits")
      logits = output_bias(embedding(output_projection(hidden), reverse=True))
    else:
      output_bias = keras.layers.Dense(vocabulary_size, name="logits")
      logits = output_bias(hidden)
    decoder = keras.Model(decoder_inputs, logits, name="decoder")

    # === Functional model ===
    inputs = {"tokens": tokens, "decoder_tokens": decoder_tokens}
    to_decoder = {"decoder_tokens": decoder_tokens}
    encoded = encoder(tokens) if encoder is not None else {}
    if latent_layer is not None and decode_mean_of == 1:
      to_decoder["z"] = latent_layer(encoded["features"], sample=True)
    elif latent_layer is not None:  # The paper's protocol: the mean of the draws.
      draws = latent_layer(encoded["features"], sample=True, num_samples=decode_mean_of)
      to_decoder["z"] = keras.ops.mean(draws, axis=0)
    if bow_conditioned:
      to_decoder["bow"] = encoded["bow"]
    if num_labels:
      inputs["label"] = to_decoder["label"] = keras.Input((), dtype="int32", name="label")
    outputs = layers.SequenceReconstruction(name="reconstruction")(tokens, decoder(to_decoder))
    super().__init__(inputs=inputs, outputs=outputs, **kwargs)

    # === Config ===
    self.vocabulary_size = vocabulary_size
    self.embedding_dim = embedding_dim
    self.hidden_dim = hidden_dim
    self.latent_dim = latent_dim
    self.latent_kind = latent
    self.concentration = concentration
    self.kl_schedule = kl_schedule
    self.free_bits = free_bits
    self.min_concentration = min_concentration
    self.max_concentration = max_concentration
    self.sampler = sampler
    self.encoder_layers = encoder_layers
    self.bidirectional = bidirectional
    self.decoder_mode = decoder_mode
    self.word_dropout = word_dropout
    self.bow_conditioned = bow_conditioned
    self.num_labels = num_labels
    self.label_dim = label_dim
    self.dropout = dropout
    self.tie_embeddings = tie_embeddings
    self.decode_mean_of = decode_mean_of
    self.seed = seed
    self.encoder = encoder
    self.latent = latent_layer
    self.decoder = decoder
    # The decoder's layers, for the step API.
    self._step_layers = {
        "embedding": embedding, "label_embedding": label_embedding,
        "initial_h": initial_h, "initial_c": initial_c, "cell": decoder_lstm.cell,
        "output_projection": output_projection, "logits": output_bias,
    }

  # Analysis API shared with NVDM (used by the evaluator).
  def encode_features(self, batch, training=False):
    """Encoder features h of a batch (None for the RNNLM)."""
    if self.latent is None:
      return None
    return self.encoder(batch["tokens"], training=training)["features"]

  def reconstruction_nll(self, batch, z, training=False):
    """-log p(x | z) per sentence, float32 [B]."""
    logits = self.decoder(self.decoder_inputs(batch, z), training=training)
    return layers.sequence_nll(batch["tokens"], logits)

  def reconstruction_nll_of_draws(self, batch, draws):
    """The paper's protocol: -log p(x | mean of the draws) per sentence, [B].

    `draws` [n, B, d] are z ~ q(z|x); their mean is decoded as it is (inside
    the ball for spherical latents), as in training with `decode_mean_of`.
    With the KL of q added this is NOT a bound on -log p(x): the mean is a
    less noisy code than the one draw the KL pays for.
    """
    return self.reconstruction_nll(batch, tf.reduce_mean(draws, axis=0))

  @property
  def protocol_draws(self):
    """n of the paper's protocol this model trained with (`decode_mean_of`)."""
    return self.decode_mean_of

  def num_tokens(self, batch):
    """Tokens per sentence, <eos> included."""
    return tf.math.count_nonzero(batch["tokens"], axis=-1, dtype=tf.float32)

  # Step API: the decoder one word at a time (decoding, serving). The same
  # layers as the decoder's graph; cf. keras-hub's `call_with_cache`.
  def batch_conditioning(self, batch):
    """The decoder's conditioning other than z that a batch carries.

    Returns:
      {"bow": [B, embedding_dim] (NVRNN-BoW), "label": [B] (labelled
      models)}, only the keys the model uses.
    """
    conditioning = {}
    if self.bow_conditioned:
      conditioning["bow"] = self.encoder(batch["tokens"])["bow"]
    if self.num_labels:
      conditioning["label"] = batch["label"]
    return conditioning

  def decoder_conditioning(self, z=None, bow=None, label=None):
    """The vector fed at every decoder step besides the previous word.

    Args:
      z: [B, latent_dim] (None for the RNNLM).
      bow: [B, embedding_dim], NVRNN-BoW only.
      label: int [B], labelled models only.

    Returns:
      float32 [B, C] (z, then the BoW vector, then the label embedding), or
      None when the decoder is conditioned on nothing.
    """
    label_vector = (self._step_layers["label_embedding"](label) if self.num_labels
                    else None)
    parts = _conditioning_parts(
        None if self.latent is None else tf.convert_to_tensor(z, tf.float32),
        bow if self.bow_conditioned else None, label_vector)
    return tf.concat([tf.cast(p, tf.float32) for p in parts], axis=-1) if parts else None

  def decoder_initial_state(self, z, batch_size):
    """[h, c], each [B, hidden_dim]: linear maps of z, zeros for the RNNLM."""
    if self.latent is None:
      zeros = tf.zeros([batch_size, self.hidden_dim])
      return [zeros, zeros]
    z = tf.convert_to_tensor(z, tf.float32)
    return [self._step_layers["initial_h"](z), self._step_layers["initial_c"](z)]

  def decoder_step(self, previous, state, conditioning):
    """One decoder step.

    Args:
      previous: int [N], the previous word (<bos> first).
      state: [h, c], each [N, hidden_dim].
      conditioning: [N, C] from `decoder_conditioning`, or None.

    Returns:
      (next-word logits float32 [N, V], new [h, c]).

    Example:
    >>> model = NVRNN(vocabulary_size=30, embedding_dim=8, hidden_dim=16, latent_dim=4)
    >>> z = tf.ones([2, 4]) / 2.0
    >>> state = model.decoder_initial_state(z, 2)
    >>> logits, state = model.decoder_step(tf.fill([2], 2), state,
    ...                                    model.decoder_conditioning(z))
    >>> logits.shape
    TensorShape([2, 30])
    """
    inputs = []
    if self.decoder_mode == "standard":
      inputs.append(self._step_layers["embedding"](previous))
    inputs.append(conditioning if conditioning is not None
                  else tf.ones([tf.shape(previous)[0], 1]))
    output, state = self._step_layers["cell"](tf.concat(inputs, axis=-1), state,
                                              training=False)
    return tf.cast(self.output_logits(output), tf.float32), list(state)

  def output_logits(self, hidden):
    """Next-word logits [..., V] from decoder LSTM outputs [..., hidden_dim]."""
    if self.tie_embeddings:
      projected = self._step_layers["output_projection"](hidden)
      hidden = self._step_layers["embedding"](projected, reverse=True)
    return self._step_layers["logits"](hidden)

  def decoder_inputs(self, batch, z):
    """The decoder's input dict for a batch and latent codes z ([B, d] or None)."""
    inputs = {"decoder_tokens": batch["decoder_tokens"], **self.batch_conditioning(batch)}
    if self.latent is not None:
      inputs["z"] = z
    return inputs

  def get_config(self):
    return {
        "name": self.name, "trainable": self.trainable,
        "vocabulary_size": self.vocabulary_size, "embedding_dim": self.embedding_dim,
        "hidden_dim": self.hidden_dim, **latent_lib.latent_config(self),
        "encoder_layers": self.encoder_layers, "bidirectional": self.bidirectional,
        "decoder_mode": self.decoder_mode, "word_dropout": self.word_dropout,
        "bow_conditioned": self.bow_conditioned, "num_labels": self.num_labels,
        "label_dim": self.label_dim, "dropout": self.dropout,
        "tie_embeddings": self.tie_embeddings, "decode_mean_of": self.decode_mean_of,
        "seed": self.seed,
    }

  @classmethod
  def from_config(cls, config):
    return cls(**config_lib.upgrade_model_arguments("nvrnn", config))
