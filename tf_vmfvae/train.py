r"""Trains a tf_vmfvae model. Flags only live here; the work is in train_lib.

Usage:
  python -m tf_vmfvae.train --flagfile=configs/ptb.flags [--model_dir=...]
  python -m tf_vmfvae.train --flagfile=configs/smoke.flags --model_dir=/tmp/smoke

Rerunning the same command after an interruption resumes from the last
completed epoch; rerunning it with a larger --epochs trains a finished run
longer.
"""

import logging

from absl import flags  # pylint: disable=g-import-not-at-top

from tf_vmfvae import cli  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  cli.quiet_native_logs()  # Before TensorFlow is imported.

from tf_vmfvae import config as config_lib  # pylint: disable=g-import-not-at-top
from tf_vmfvae import errors  # pylint: disable=g-import-not-at-top
from tf_vmfvae.data import registry  # pylint: disable=g-import-not-at-top

# -- Data --
_DATASET = flags.DEFINE_enum("dataset", "ptb", list(registry.DATASETS),
                             "Registered corpus.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Folder holding the dataset's own files (e.g. PTB's train.txt, "
    "valid.txt, test.txt). Default: $TF_VMFVAE_DATA_DIR/<dataset>, else download.")
_MAX_VOCAB_SIZE = flags.DEFINE_integer("max_vocab_size", None,
                                       "Vocabulary cap incl. 4 reserved ids.", lower_bound=5)
_MIN_WORDS = flags.DEFINE_integer("min_words", 2, "Drop sentences with fewer words.", lower_bound=0)
_MAX_LEN = flags.DEFINE_integer("max_len", 100, "Truncate sentences to this many words.",
                                lower_bound=1)
_BUCKET_WIDTH = flags.DEFINE_integer(
    "bucket_width", config_lib.DataConfig.bucket_width,
    "Length-bucket width: 1 batches sentences of one length together (no padding); 0: no "
    "bucketing. With --jit_compile, 5 or more: every batch shape compiles.", lower_bound=0)
_LOWERCASE = flags.DEFINE_bool(
    "lowercase", False, "Case-fold the text, in training and in the exported model alike "
    "(off: the corpus's own tokens, e.g. PTB's `N`, stay as they are).")

# -- Model --
_FAMILY = flags.DEFINE_enum("family", "nvrnn", list(config_lib.FAMILIES), "Model family.")
_LATENT = flags.DEFINE_enum("latent", "vmf",
                            list(config_lib.LATENT_KINDS),
                            "Latent distribution; none = RNNLM baseline.")
# Flags whose default is None take the model family's own default (the
# constructor's): NVRNN hidden 400, latent 50, kappa 80, 1 encoder layer,
# dropout 0.5; NVDM hidden 400, latent 25, kappa 100, 2 layers, dropout 0.1.
_FAMILY_DEFAULT = " Default: the family's (NVRNN or NVDM constructor)."
_KAPPA = flags.DEFINE_float("kappa", None,
                            "Fixed concentration of spherical latents." + _FAMILY_DEFAULT)
_KL_NATS = flags.DEFINE_float(
    "kl_nats", None, "Instead of --kappa: the fixed concentration whose vMF KL to the "
    "uniform prior is this many nats at --latent_dim (tf_vmfvae.latent.kappa_for_kl).")
_KAPPA_MIN = flags.DEFINE_float("kappa_min", 1.0, "Lower clip of a learned kappa.")
_KAPPA_MAX = flags.DEFINE_float("kappa_max", 500.0, "Upper clip of a learned kappa.")
_SAMPLER = flags.DEFINE_enum(
    "sampler", "wood", list(config_lib.VMF_SAMPLERS),
    "How a fixed-kappa vMF is sampled: wood (Wood 1994's rejection loop) or table (a "
    "loop-free inverse-CDF table, tf_vmfvae.latent.sampling).")
_KL_SCHEDULE = flags.DEFINE_string(
    "kl_schedule", "constant",
    "Gaussian KL weight: constant|linear|sigmoid|cyclical, optionally with "
    "arguments, e.g. 'sigmoid:midpoint=10000,steepness=0.00046', or a number.")
_FREE_BITS = flags.DEFINE_float("free_bits", 0.0, "Per-dimension KL floor (Gaussian).",
                                lower_bound=0.0)
_EMBEDDING_DIM = flags.DEFINE_integer("embedding_dim", 100, "Word embedding size.", lower_bound=1)
_HIDDEN_DIM = flags.DEFINE_integer("hidden_dim", None,
                                   "LSTM or MLP width." + _FAMILY_DEFAULT, lower_bound=1)
_LATENT_DIM = flags.DEFINE_integer("latent_dim", None, "Latent dimension." + _FAMILY_DEFAULT,
                                   lower_bound=2)
_ENCODER_LAYERS = flags.DEFINE_integer(
    "encoder_layers", None, "Encoder layers (NVRNN: LSTMs; NVDM: tanh MLP)." + _FAMILY_DEFAULT,
    lower_bound=1)
_BIDIRECTIONAL = flags.DEFINE_bool("bidirectional", False, "Bidirectional encoder.")
_DECODER_MODE = flags.DEFINE_enum("decoder_mode", "standard", list(config_lib.DECODER_MODES),
                                  "Standard feeds the previous word; Inputless only z.")
_WORD_DROPOUT = flags.DEFINE_float("word_dropout", 0.0,
                                   "Decoder word dropout in [0, 1) (Standard mode).")
_BOW_CONDITIONED = flags.DEFINE_bool("bow_conditioned", False,
                                     "NVRNN-BoW: feed the mean word embedding too.")
_LABEL_DIM = flags.DEFINE_integer("label_dim", 50, "Label embedding size (Yelp).", lower_bound=1)
_TIE_EMBEDDINGS = flags.DEFINE_bool(
    "tie_embeddings", False, "NVRNN: score decoder outputs against the input embeddings "
    "(through a projection to embedding_dim) instead of a separate softmax matrix.")
_DROPOUT = flags.DEFINE_float(
    "dropout", None,
    "NVRNN: dropout on embeddings and outputs; NVDM: on the encoder." + _FAMILY_DEFAULT)
_DECODE_MEAN_OF = flags.DEFINE_integer(
    "decode_mean_of", 1,
    "NVRNN training protocol: 1 = the true ELBO (one z per sentence); n > 1 = the paper's "
    "code (n=3): the decoder reads the mean of n draws of z and one draw's KL is charged "
    "(not a bound).", lower_bound=1)
_RECONSTRUCTION_DRAWS = flags.DEFINE_integer(
    "reconstruction_draws", 1,
    "NVDM training protocol: the reconstruction averaged over n draws of z (the paper's "
    "code: 3); still the ELBO, with less variance.", lower_bound=1)
_DECODE_SAMPLES = flags.DEFINE_integer(
    "decode_samples", None,
    "Old name of --decode_mean_of (NVRNN) and --reconstruction_draws (NVDM).", lower_bound=1)
_DECODER_HIDDEN_DIM = flags.DEFINE_integer(
    "decoder_hidden_dim", 0, "NVDM: a hidden layer in the decoder (0: none; paper's code: 400).",
    lower_bound=0)
_DECODER_ACTIVATION = flags.DEFINE_enum(
    "decoder_activation", "tanh", ["tanh", "relu"],
    "NVDM: activation of the decoder's hidden layer (paper's code: relu).")
_VALIDATION_FRACTION = flags.DEFINE_float(
    "validation_fraction", 0.05, "NVDM: fraction of train held out for validation.")

# -- Training --
_MODEL_DIR = flags.DEFINE_string("model_dir", None, "Where checkpoints and logs go.")
_OPTIMIZER = flags.DEFINE_enum("optimizer", "sgd", list(config_lib.OPTIMIZERS), "Optimizer.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 10.0, "Initial learning rate.")
_CLIP_NORM = flags.DEFINE_float("clip_norm", 0.25, "Global gradient-norm clip (0: none).",
                                lower_bound=0.0)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 20, "Global batch size.", lower_bound=1)
_EPOCHS = flags.DEFINE_integer("epochs", 100, "Maximum epochs.", lower_bound=1)
_LR_SCHEDULE = flags.DEFINE_enum(
    "lr_schedule", "plateau", list(config_lib.LR_SCHEDULES),
    "plateau: --learning_rate divided by --lr_decay after an epoch without validation "
    "gain, stop after --max_bad_epochs of them (the paper's); cosine|linear: a budget, "
    "warm-up over --warmup_epochs then decay to zero at the end of --epochs "
    "(configs/budget.flags).")
_WARMUP_EPOCHS = flags.DEFINE_float("warmup_epochs", 0.0,
                                    "Budget schedules: epochs of linear warm-up.", lower_bound=0.0)
_LR_DECAY = flags.DEFINE_float("lr_decay", 1.2,
                               "Plateau schedule: LR divisor after an epoch without gain.",
                               lower_bound=1.0)
_MAX_BAD_EPOCHS = flags.DEFINE_integer(
    "max_bad_epochs", 15, "Plateau schedule: stop after this many epochs without gain.",
    lower_bound=1)
_STEPS_PER_EPOCH = flags.DEFINE_integer("steps_per_epoch", None, "Cap batches per epoch.",
                                        lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Global seed.")
_LOG_LATENT_USAGE = flags.DEFINE_bool(
    "log_latent_usage", True, "Log validation mutual information, active units and a "
    "learned kappa after every epoch (history and TensorBoard).")
_JIT_COMPILE = flags.DEFINE_bool(
    "jit_compile", False, "Compile the training and validation steps with XLA (one "
    "compilation per batch shape; batches are padded to their length bucket's edge).")
_STRATEGY = flags.DEFINE_enum("strategy", "auto", list(config_lib.STRATEGIES),
                              "tf.distribute strategy; auto: multi_worker when TF_CONFIG is set, "
                              "mirrored over several GPUs, else none (the one device).")
_NUM_THREADS = flags.DEFINE_integer(
    "num_threads", 0, "CPU threads for TensorFlow's intra- and inter-op pools (0: TF's "
    "default, all cores). 1 suits several runs sharing a small machine.", lower_bound=0)
_VERBOSE = flags.DEFINE_enum("verbose", "auto", ["auto", "0", "1", "2"],
                             "Keras verbosity; auto: progress bar on a terminal.")

# Values the flags alone can rule out are refused while flags are parsed, in
# one line that names the flag; the constructors check the rest.
for _name in ("kappa", "kl_nats", "kappa_min", "kappa_max", "learning_rate"):
  flags.register_validator(_name, lambda value: value is None or value > 0,
                           message="must be > 0")
for _name in ("word_dropout", "dropout"):
  flags.register_validator(_name, lambda value: value is None or 0 <= value < 1,
                           message="must be in [0, 1)")
flags.register_validator("validation_fraction", lambda value: 0 < value < 1,
                         message="must be in (0, 1)")

flags.mark_flag_as_required("model_dir")


def parse_kl_schedule(spec):
  """'sigmoid:midpoint=10,steepness=0.1' -> a serialized schedule; '0.5' -> 0.5."""
  from tf_vmfvae.latent import schedules  # pylint: disable=g-import-not-at-top
  import keras  # pylint: disable=g-import-not-at-top
  try:
    return float(spec)
  except ValueError:
    pass
  name, _, arguments = spec.partition(":")
  form = ("the form is NAME or NAME:KEY=NUMBER,... (e.g. "
          "'sigmoid:midpoint=10000,steepness=0.00046'), or a number")
  try:
    schedule_class = schedules.get(name).__class__
  except ValueError as error:
    raise errors.InvalidValueError(f"--kl_schedule={spec}: {error}") from None
  if not arguments:
    return name
  kwargs = {}
  for item in arguments.split(","):
    key, _, value = item.partition("=")
    try:
      number = float(value)
    except ValueError:
      raise errors.InvalidValueError(
          f"--kl_schedule={spec}: {value!r} is not a number; {form}.") from None
    kwargs[key.strip()] = int(number) if number.is_integer() and "." not in value else number
  try:
    schedule = schedule_class(**kwargs)
  except TypeError:
    import inspect  # pylint: disable=g-import-not-at-top
    accepted = list(inspect.signature(schedule_class.__init__).parameters)[1:]
    raise errors.InvalidValueError(
        f"--kl_schedule={spec}: {name} takes {', '.join(accepted)}; "
        f"{form}.") from None
  except ValueError as error:
    raise errors.InvalidValueError(f"--kl_schedule={spec}: {error}") from None
  return keras.saving.serialize_keras_object(schedule)


def concentration_for_kl_nats(nats):
  """--kl_nats as a concentration at the run's latent dimension."""
  import inspect  # pylint: disable=g-import-not-at-top
  from tf_vmfvae import latent  # pylint: disable=g-import-not-at-top
  from tf_vmfvae import models  # pylint: disable=g-import-not-at-top
  if _KAPPA.value is not None:
    raise errors.InvalidValueError("Give --kappa or --kl_nats, not both.")
  latent_dim = _LATENT_DIM.value
  if latent_dim is None:
    family = models.NVDM if _FAMILY.value == "nvdm" else models.NVRNN
    latent_dim = inspect.signature(family.__init__).parameters["latent_dim"].default
  try:
    return latent.kappa_for_kl(latent_dim, nats)
  except ValueError as error:
    raise errors.InvalidValueError(f"--kl_nats: {error}") from None


def protocol_draws_from_flags():
  """{model argument: n} of the paper's protocol, or {} for the true ELBO.

  NVRNN's `decode_mean_of` and NVDM's `reconstruction_draws` are different
  things; the flag of the other family is refused, and their old shared
  name, --decode_samples, is read as the family's own.
  """
  given = {_DECODE_MEAN_OF.name: _DECODE_MEAN_OF.value,
           _RECONSTRUCTION_DRAWS.name: _RECONSTRUCTION_DRAWS.value}
  own = config_lib.RENAMED_MODEL_ARGUMENTS[_FAMILY.value][_DECODE_SAMPLES.name]
  for name, value in given.items():
    if name != own and value != 1:
      raise errors.InvalidValueError(f"--{name} is not a flag of --family={_FAMILY.value}: "
                                     f"use --{own}.")
  if _DECODE_SAMPLES.value not in (None, 1):  # Older runs' flags.txt read 1.
    if given[own] != 1:
      raise errors.InvalidValueError(
          f"Give --{own} only (--{_DECODE_SAMPLES.name} is its old name).")
    logging.warning("--%s is an old name: --%s=%d", _DECODE_SAMPLES.name, own,
                    _DECODE_SAMPLES.value)
    given[own] = _DECODE_SAMPLES.value
  return {own: given[own]} if given[own] != 1 else {}


def experiment_from_flags():
  from tf_vmfvae import config  # pylint: disable=g-import-not-at-top
  model = {
      "latent": _LATENT.value,
      "min_concentration": _KAPPA_MIN.value, "max_concentration": _KAPPA_MAX.value,
      "kl_schedule": parse_kl_schedule(_KL_SCHEDULE.value), "free_bits": _FREE_BITS.value,
  }
  for name, holder in (("concentration", _KAPPA), ("hidden_dim", _HIDDEN_DIM),
                       ("latent_dim", _LATENT_DIM), ("encoder_layers", _ENCODER_LAYERS),
                       ("dropout", _DROPOUT)):
    if holder.value is not None:  # Else the family's constructor default.
      model[name] = holder.value
  if _KL_NATS.value is not None:
    model["concentration"] = concentration_for_kl_nats(_KL_NATS.value)
  # Recorded only when set, so that older runs' configs stay equal.
  model.update(protocol_draws_from_flags())
  if _SAMPLER.value != "wood":
    model["sampler"] = _SAMPLER.value
  if _FAMILY.value == "nvrnn":
    model.update({
        "embedding_dim": _EMBEDDING_DIM.value, "bidirectional": _BIDIRECTIONAL.value,
        "decoder_mode": _DECODER_MODE.value, "word_dropout": _WORD_DROPOUT.value,
        "bow_conditioned": _BOW_CONDITIONED.value, "label_dim": _LABEL_DIM.value,
        "tie_embeddings": _TIE_EMBEDDINGS.value,
    })
  else:
    model["decoder_hidden_dim"] = _DECODER_HIDDEN_DIM.value
    model["decoder_activation"] = _DECODER_ACTIVATION.value
  return config.ExperimentConfig(
      family=_FAMILY.value,
      data=config.DataConfig(
          dataset=_DATASET.value, data_dir=_DATA_DIR.value,
          max_vocab_size=_MAX_VOCAB_SIZE.value, min_words=_MIN_WORDS.value,
          max_len=_MAX_LEN.value, lowercase=_LOWERCASE.value,
          bucket_width=_BUCKET_WIDTH.value, validation_fraction=_VALIDATION_FRACTION.value),
      model=model,
      train=config.TrainConfig(
          optimizer=_OPTIMIZER.value, learning_rate=_LEARNING_RATE.value,
          clip_norm=_CLIP_NORM.value or None, batch_size=_BATCH_SIZE.value,
          epochs=_EPOCHS.value, lr_schedule=_LR_SCHEDULE.value,
          warmup_epochs=_WARMUP_EPOCHS.value, lr_decay=_LR_DECAY.value,
          max_bad_epochs=_MAX_BAD_EPOCHS.value, steps_per_epoch=_STEPS_PER_EPOCH.value,
          seed=_SEED.value, log_latent_usage=_LOG_LATENT_USAGE.value,
          jit_compile=_JIT_COMPILE.value))


def experiment_from_args(*args):
  """The `ExperimentConfig` that `python -m tf_vmfvae.train <args>` would train.

  For notebooks and tests: the flags are parsed into a saved-and-restored
  copy of absl's state, so the caller's own flags are untouched.

  Example:
  >>> experiment = experiment_from_args("--flagfile=configs/ptb.flags")  # doctest: +SKIP
  >>> experiment.model["concentration"]                                 # doctest: +SKIP
  35.0
  """
  from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
  with flagsaver.flagsaver():
    flags.FLAGS.unparse_flags()
    flags.FLAGS(cli.expand_flagfiles(["train", "--model_dir=unused", *args]))
    return experiment_from_flags()


def own_flags_text():
  """This binary's flags with their values, one per line: a flagfile that
  reruns the command (absl's `flags_into_string` would add flags that other
  libraries define later, which the binary does not know at parse time)."""
  holders = [v for v in globals().values() if isinstance(v, flags.FlagHolder)]
  lines = [flags.FLAGS[h.name].serialize() for h in holders]
  return "".join(line + "\n" for line in lines if line)


def main(argv):
  del argv
  logging.getLogger("tf_vmfvae").setLevel(logging.INFO)
  from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
  from tf_vmfvae import train_lib  # pylint: disable=g-import-not-at-top
  runs.set_num_threads(_NUM_THREADS.value)
  experiment = experiment_from_flags()
  # A refused resume must leave the run's own flags.txt as it was.
  train_lib.check_same_config(_MODEL_DIR.value, experiment)
  strategy = train_lib.make_strategy(_STRATEGY.value)
  verbose = _VERBOSE.value if _VERBOSE.value == "auto" else int(_VERBOSE.value)
  metrics = train_lib.train(experiment, _MODEL_DIR.value, strategy=strategy, verbose=verbose,
                            flags_text=own_flags_text())
  print(f"Done: {metrics['epochs']} epochs, best validation NLL "
        f"{metrics['best_val_nll']:.3f} at epoch {metrics['best_epoch']} "
        f"({metrics['stopped']}); {metrics['train_seconds']:.0f} s of training.")


if __name__ == "__main__":
  cli.run(main)
