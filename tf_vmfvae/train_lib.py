"""Training library: builds data and model from a config, trains, checkpoints.

Everything `python -m tf_vmfvae.train` does is here, callable from Python:

  >>> from tf_vmfvae import config, train_lib            # doctest: +SKIP
  >>> cfg = config.ExperimentConfig(model={"latent": "vmf"})  # doctest: +SKIP
  >>> train_lib.train(cfg, "/tmp/ptb_vmf")               # doctest: +SKIP

Model directory layout (all plain files, no pickle):
  config.json              the ExperimentConfig
  vocab.txt                one token per line, in id order
  checkpoints/epoch-N.keras  the latest completed epoch (model + optimizer)
  state.json               epoch, learning rate, best, history; written last
  best.keras               the best model on validation
  metrics.json             final metrics when training ends
  logs/                    TensorBoard

Resume: training again into the same model dir continues after the last
completed epoch (an interrupted epoch is redone from its start). The
configuration must be the same except `epochs`: a larger budget trains a
finished run longer (unless it stopped early on validation).
"""

import dataclasses
import json
import logging
import math
import os
import pathlib
import time

import keras
import numpy as np
import tensorflow as tf

from tf_vmfvae import config as config_lib
from tf_vmfvae import data
from tf_vmfvae.models import NVDM
from tf_vmfvae.models import NVRNN

logger = logging.getLogger("tf_vmfvae")

STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.txt"
BEST_MODEL = "best.keras"
METRICS_FILE = "metrics.json"


def make_strategy(kind="auto"):
  """Returns a `tf.distribute.Strategy`.

  Args:
    kind: "auto" (MultiWorkerMirroredStrategy when TF_CONFIG is set, else
      MirroredStrategy over all local GPUs, or the CPU), "mirrored",
      "multi_worker" or "one_device".
  """
  if kind == "auto":
    kind = "multi_worker" if os.environ.get("TF_CONFIG") else "mirrored"
  if kind == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  if kind == "mirrored":
    return tf.distribute.MirroredStrategy()
  if kind == "one_device":
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
  raise ValueError("`strategy` must be one of ['auto', 'mirrored', 'multi_worker', "
                   f"'one_device'], got {kind!r}.")


def set_num_threads(num_threads):
  """Caps TensorFlow's intra- and inter-op CPU thread pools (0: TF's default).

  Call before TensorFlow runs anything. One thread each suits several runs
  sharing a small machine.
  """
  if num_threads < 0:
    raise ValueError(f"`num_threads` must be >= 0, got {num_threads}.")
  if num_threads:
    tf.config.threading.set_intra_op_parallelism_threads(num_threads)
    tf.config.threading.set_inter_op_parallelism_threads(num_threads)


def make_optimizer(train_config):
  clip = {"global_clipnorm": train_config.clip_norm} if train_config.clip_norm else {}
  if train_config.optimizer == "sgd":
    return keras.optimizers.SGD(learning_rate=train_config.learning_rate, **clip)
  return keras.optimizers.Adam(learning_rate=train_config.learning_rate, **clip)


def build_model(experiment, vocabulary_size, num_labels=0):
  """Builds the (uncompiled) model an experiment describes."""
  kwargs = dict(experiment.model)
  kwargs.setdefault("seed", experiment.train.seed)
  if experiment.family == "nvdm":
    return NVDM(vocabulary_size=vocabulary_size, **kwargs)
  if num_labels:
    kwargs["num_labels"] = num_labels
  return NVRNN(vocabulary_size=vocabulary_size, **kwargs)


def load_data(experiment, model_dir=None, splits=None):
  """Loads the experiment's corpus (a `SentenceSplits` or `DocumentSplits`).

  A sentence corpus reuses model_dir's saved vocabulary when there is one.
  """
  if experiment.family == "nvdm":
    return data.load_document_splits(experiment.data, splits=splits)
  vocabulary = None
  if model_dir is not None and (pathlib.Path(model_dir) / VOCAB_FILE).is_file():
    vocabulary = data.Vocabulary.load(pathlib.Path(model_dir) / VOCAB_FILE)
  return data.load_sentence_splits(experiment.data, vocabulary=vocabulary, splits=splits)


class FixedValidationSeed(keras.callbacks.Callback):
  """Validates with the same latent draws every time (common random numbers).

  The validation ELBO samples z, so two epochs' scores differ by sampling
  noise as well as by what the model learned. On small validation sets of
  long documents (20NG: ~0.5 nats a document) that noise is as large as a
  late epoch's gain, and the plateau rule (`lr_decay`, `max_bad_epochs`)
  fires on noise. This callback sets the latent sampler's seed state to the
  same value at the start of each validation and restores the training
  state after it, so training draws are unaffected.

  Args:
    model: the model being trained (its `latent` layer, if any, is seeded).
    seed: int, the validation seed.
  """

  def __init__(self, model, seed):
    super().__init__()
    latent_layer = getattr(model, "latent", None)
    self._generators = [] if latent_layer is None else [latent_layer.seed_generator]
    self._seed = seed
    self._saved = []

  def on_test_begin(self, logs=None):
    self._saved = [g.state.numpy() for g in self._generators]
    for g, state in zip(self._generators, self._saved):
      g.state.assign(np.array([self._seed, 0]).astype(state.dtype))

  def on_test_end(self, logs=None):
    for g, state in zip(self._generators, self._saved):
      g.state.assign(state)


def validation_nll(logs, prefix="val_"):
  """The unweighted negative ELBO per sentence: recon + KL (no annealing)."""
  return logs[prefix + "recon"] + logs.get(prefix + "kl", 0.0)


def _atomic_write(path, text):
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def _save_model(model, path):
  tmp = f"{path}.tmp.keras"
  model.save(tmp)
  os.replace(tmp, path)


def _check_same_config(model_dir, experiment):
  """Refuses to resume a run under another configuration.

  Only the epoch budget may differ: raising `epochs` trains a run longer.
  """
  saved = pathlib.Path(model_dir) / CONFIG_FILE
  if saved.is_file():
    previous = config_lib.ExperimentConfig.load(saved)
    same_budget = dataclasses.replace(
        experiment, train=dataclasses.replace(experiment.train, epochs=previous.train.epochs))
    if previous != same_budget:
      raise ValueError(
          f"{model_dir} holds a run with another configuration ({saved}). Resume it "
          "with the same flags (only --epochs may change, to train it longer), or "
          "train into a new --model_dir.")


def train(experiment, model_dir, strategy=None, verbose="auto", callbacks=()):
  """Trains (or resumes) an experiment into `model_dir`.

  Args:
    experiment: `tf_vmfvae.config.ExperimentConfig`.
    model_dir: str, where checkpoints, logs and metrics go.
    strategy: a `tf.distribute.Strategy`, default `make_strategy("auto")`.
    verbose: Keras verbosity: 1 progress bar, 2 one line per epoch, 0 none,
      "auto" (1 on a terminal, 2 otherwise).
    callbacks: extra Keras callbacks.

  Returns:
    The final metrics dict (also written to metrics.json).
  """
  model_dir = pathlib.Path(model_dir)
  model_dir.mkdir(parents=True, exist_ok=True)
  (model_dir / "checkpoints").mkdir(exist_ok=True)
  _check_same_config(model_dir, experiment)
  strategy = strategy or make_strategy()
  tc = experiment.train
  keras.utils.set_random_seed(tc.seed)
  if verbose == "auto":
    verbose = 1 if os.isatty(1) else 2

  splits = load_data(experiment, model_dir, splits=["train", "valid"])
  if not (model_dir / VOCAB_FILE).is_file():
    splits.vocabulary.save(model_dir / VOCAB_FILE)
  experiment.save(model_dir / CONFIG_FILE)
  train_ds = splits.dataset("train", tc.batch_size, shuffle=True, seed=tc.seed,
                            bucket_width=experiment.data.bucket_width)
  if tc.steps_per_epoch:
    train_ds = train_ds.take(tc.steps_per_epoch)
  valid_ds = splits.dataset("valid", tc.batch_size, bucket_width=experiment.data.bucket_width)
  train_tokens = splits.num_tokens("train")

  state_path = model_dir / STATE_FILE
  with strategy.scope():
    if state_path.is_file():
      state = json.loads(state_path.read_text())
      model = keras.saving.load_model(model_dir / state["checkpoint"], safe_mode=True)
      model.optimizer.learning_rate.assign(state["learning_rate"])
      logger.info("Resuming %s after epoch %d.", model_dir, state["epoch"])
    else:
      state = {"epoch": 0, "checkpoint": None, "learning_rate": tc.learning_rate,
               "best_val_nll": math.inf, "best_epoch": 0, "bad_epochs": 0,
               "history": [], "train_seconds": 0.0, "stopped": None}
      model = build_model(experiment, len(splits.vocabulary), splits.num_labels)
      model.compile(optimizer=make_optimizer(tc))
  logger.info("Model: %d parameters; %d replicas.", model.count_params(),
              strategy.num_replicas_in_sync)

  tensorboard = keras.callbacks.TensorBoard(log_dir=str(model_dir / "logs"))
  fixed_validation_seed = FixedValidationSeed(model, tc.seed)
  while state["epoch"] < tc.epochs and state["stopped"] is None:
    epoch = state["epoch"]
    start = time.time()
    history = model.fit(train_ds, validation_data=valid_ds, initial_epoch=epoch, shuffle=False,
                        epochs=epoch + 1, verbose=verbose,
                        callbacks=[fixed_validation_seed, tensorboard, *callbacks])
    seconds = time.time() - start
    logs = {k: float(v[-1]) for k, v in history.history.items()}
    val_nll = validation_nll(logs)
    logs.update(epoch=epoch + 1, learning_rate=state["learning_rate"], seconds=seconds,
                val_nll=val_nll)
    if not tc.steps_per_epoch:
      logs["train_tokens_per_second"] = train_tokens / seconds
    state["history"].append(logs)
    state["train_seconds"] += seconds
    if val_nll < state["best_val_nll"]:
      state["best_val_nll"], state["best_epoch"] = val_nll, epoch + 1
      _save_model(model, model_dir / BEST_MODEL)
    else:
      state["bad_epochs"] += 1
      state["learning_rate"] /= tc.lr_decay
      model.optimizer.learning_rate.assign(state["learning_rate"])
      if tc.max_bad_epochs is not None and state["bad_epochs"] >= tc.max_bad_epochs:
        state["stopped"] = f"{state['bad_epochs']} epochs without validation improvement"
    if not math.isfinite(logs["loss"]):
      state["stopped"] = "the loss is not finite"
    previous = state["checkpoint"]
    state["checkpoint"] = f"checkpoints/epoch-{epoch + 1:03d}.keras"
    state["epoch"] = epoch + 1
    _save_model(model, model_dir / state["checkpoint"])
    _atomic_write(state_path, json.dumps(state, indent=2))
    if previous and previous != state["checkpoint"]:
      (model_dir / previous).unlink(missing_ok=True)
    logger.info("epoch %d: val NLL %.3f (best %.3f at %d), lr %.4g, %.0f s", epoch + 1,
                val_nll, state["best_val_nll"], state["best_epoch"], logs["learning_rate"],
                seconds)

  metrics = {
      "epochs": state["epoch"], "best_epoch": state["best_epoch"],
      "best_val_nll": state["best_val_nll"], "train_seconds": state["train_seconds"],
      "stopped": state["stopped"] or f"reached {tc.epochs} epochs",
      "last": state["history"][-1] if state["history"] else {},
  }
  _atomic_write(model_dir / METRICS_FILE, json.dumps(metrics, indent=2))
  return metrics
