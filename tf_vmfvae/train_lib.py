"""Training library: builds data and model from a config, trains, checkpoints.

Everything `python -m tf_vmfvae.train` does is here, callable from Python:

  >>> from tf_vmfvae import config, train_lib            # doctest: +SKIP
  >>> cfg = config.ExperimentConfig(model={"latent": "vmf"})  # doctest: +SKIP
  >>> train_lib.train(cfg, "/tmp/ptb_vmf")               # doctest: +SKIP

The run directory's layout is `tf_vmfvae.runs`'s.

Resume: training again into the same model dir continues after the last
completed epoch (an interrupted epoch is redone from its start). The
configuration must be the same except `epochs`: a larger budget trains a
finished run longer (unless it stopped early on validation).
"""

import contextlib
import copy
import dataclasses
import logging
import math
import os
import pathlib
import time

import keras
import numpy as np
import tensorflow as tf

from tf_vmfvae import config
from tf_vmfvae import errors
from tf_vmfvae import optimization
from tf_vmfvae import runs
from tf_vmfvae.latent import usage
from tf_vmfvae.models import NVDM
from tf_vmfvae.models import NVRNN

logger = logging.getLogger("tf_vmfvae")


def make_strategy(kind="auto"):
  """Returns a `tf.distribute.Strategy`.

  Args:
    kind: "auto" (MultiWorkerMirroredStrategy when TF_CONFIG is set, else
      MirroredStrategy over the local GPUs when there are several, else
      TensorFlow's default strategy on the one device), "mirrored",
      "multi_worker" or "one_device".

  On one device "auto" uses the default strategy: Keras then iterates the
  datasets directly, where a MirroredStrategy, even of one device, feeds
  them through a multi-device iterator whose destruction at the end of
  every epoch waited up to 60 s (docs/PERFORMANCE.md, "The 60-second grid").
  """
  if kind == "auto":
    if os.environ.get("TF_CONFIG"):
      kind = "multi_worker"
    elif len(tf.config.list_logical_devices("GPU")) > 1:
      kind = "mirrored"
    else:
      return tf.distribute.get_strategy()
  if kind == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  if kind == "mirrored":
    return tf.distribute.MirroredStrategy()
  if kind == "one_device":
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
  raise errors.InvalidValueError(
      f"`strategy` must be one of {list(config.STRATEGIES)}, got {kind!r}.")


def build_model(experiment, vocabulary_size, num_labels=0):
  """Builds the (uncompiled) model an experiment describes."""
  kwargs = dict(experiment.model)
  kwargs.setdefault("seed", experiment.train.seed)
  if experiment.family == "nvdm":
    return NVDM(vocabulary_size=vocabulary_size, **kwargs)
  if num_labels:
    kwargs["num_labels"] = num_labels
  return NVRNN(vocabulary_size=vocabulary_size, **kwargs)


def check_xla_support(model, jit_compile):
  """Refuses `jit_compile` for a latent sampled with Wood's rejection loop.

  TFP's loop draws normals of a shape computed inside the loop, which XLA
  cannot compile; the loop-free "table" sampler compiles (a learned kappa
  has only Wood's).
  """
  latent_layer = getattr(model, "latent", None)
  if jit_compile and getattr(latent_layer, "sampler", None) == "wood":
    raise errors.InvalidValueError(
        "--jit_compile needs --sampler=table: Wood's rejection sampler does not compile "
        "under XLA" + (", and a learned kappa has no other." if latent_layer.learned else "."))


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


class LatentUsageLogger(keras.callbacks.Callback):
  """Adds the latent code's use on validation to each epoch's logs.

  "val_mi" (mutual information, nats) and "val_active_units", and for a
  learned concentration "val_kappa_mean", "val_kappa_p10", "val_kappa_p90"
  (`tf_vmfvae.latent.usage.LatentUsage`): they go into the run's history and,
  as this callback runs before TensorBoard's, into its logs. Encoder only,
  with draws of its own seed: training's draws are unaffected.

  Args:
    model: the model being trained (one with a latent).
    dataset: the validation batches.
    seed: int.
  """

  def __init__(self, model, dataset, seed):
    super().__init__()
    self._usage = usage.LatentUsage(model, seed)
    self._dataset = dataset

  def on_epoch_end(self, epoch, logs=None):
    if logs is not None:
      summary = self._usage(self._dataset)
      logs.update({f"val_{name}": value for name, value in summary.items()})


class ProgressLogger(keras.callbacks.Callback):
  """A log line at least every `every_seconds` during training (no terminal).

  Keras' one-line-per-epoch verbosity says nothing for the minutes an epoch
  lasts; this logs the epoch, step / steps, tokens/s (the epoch's average
  tokens per batch times steps/s), the epoch's ETA and the loss.

  Args:
    epochs: int, the run's epoch budget.
    steps: int, batches per epoch.
    tokens_per_step: the corpus's mean target tokens per batch (0: no tokens/s).
    every_seconds: float, the longest silence.
  """

  def __init__(self, epochs, steps, tokens_per_step, every_seconds=30.0):
    super().__init__()
    self._epochs, self._steps, self._tokens_per_step = epochs, steps, tokens_per_step
    self._every = every_seconds
    self._epoch = self._start = self._last = 0

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch + 1
    self._start = self._last = time.perf_counter()

  def on_train_batch_end(self, batch, logs=None):
    now = time.perf_counter()
    if now - self._last < self._every:
      return
    self._last = now
    done = batch + 1
    rate = done / (now - self._start)
    tokens = (f", {rate * self._tokens_per_step:.0f} tokens/s" if self._tokens_per_step
              else "")
    loss = (logs or {}).get("loss")
    logger.info("epoch %d/%d: step %d/%d%s, ETA %.0f s, loss %s", self._epoch, self._epochs,
                done, self._steps, tokens, (self._steps - done) / rate,
                "?" if loss is None else f"{float(loss):.3f}")


class WorkerLostError(errors.UserError, ConnectionError):
  """Another worker of a multi-worker run stopped; this one cannot go on."""


def _first_line(text):
  return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def is_chief(strategy):
  """Whether this process writes the model directory.

  Under `MultiWorkerMirroredStrategy` only the chief (task "chief", or
  worker 0 when the cluster has no chief) writes; the other workers train
  in lockstep and write nothing. Any other strategy: True.
  """
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  if resolver.task_type == "chief":
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def apply_plateau_rule(state, val_nll, train_config):
  """Updates the run state with an epoch's validation NLL; True if it improved.

  An improvement records the new best and resets the count of consecutive
  epochs without one. Otherwise, under the "plateau" schedule, the learning
  rate is divided by `lr_decay`, and after `max_bad_epochs` such epochs in a
  row the run is marked stopped; a budget schedule sets the rate itself and
  always runs its `epochs`. `state["epoch"]` is the epoch just finished.

  Example:
  >>> from tf_vmfvae import config
  >>> tc = config.TrainConfig(learning_rate=1.0, lr_decay=2.0, max_bad_epochs=2)
  >>> state = {"epoch": 0, "best_val_nll": float("inf"), "best_epoch": 0,
  ...          "bad_epochs": 0, "learning_rate": 1.0, "stopped": None}
  >>> for nll in [5.0, 6.0, 4.0, 4.5, 4.6]:
  ...   state["epoch"] += 1
  ...   _ = apply_plateau_rule(state, nll, tc)
  >>> state["best_epoch"], state["learning_rate"], state["stopped"]
  (3, 0.125, '2 epochs without validation improvement')
  """
  if val_nll < state["best_val_nll"]:
    state["best_val_nll"], state["best_epoch"] = val_nll, state["epoch"]
    state["bad_epochs"] = 0
    return True
  state["bad_epochs"] += 1
  if train_config.lr_schedule != "plateau":
    return False
  state["learning_rate"] /= train_config.lr_decay
  if (train_config.max_bad_epochs is not None
      and state["bad_epochs"] >= train_config.max_bad_epochs):
    state["stopped"] = f"{state['bad_epochs']} epochs without validation improvement"
  return False


class EpochTimer(keras.callbacks.Callback):
  """Where the wall time of one `fit` call over one epoch goes.

  Call `start()` just before `fit` and `stop()` just after; then
  `setup_seconds` (fit's own preparation, up to the epoch's first step),
  `train_seconds` (the training steps, with the input pipeline's waits),
  `validation_seconds` and `teardown_seconds` (after validation, until
  `fit` returns) add up to `total_seconds`.
  """

  def __init__(self):
    super().__init__()
    self._marks = {}

  def _mark(self, name):
    self._marks[name] = time.perf_counter()

  def start(self):
    self._marks = {}
    self._mark("start")

  def stop(self):
    self._mark("stop")

  def on_epoch_begin(self, epoch, logs=None):
    self._mark("epoch")

  def on_test_begin(self, logs=None):
    self._mark("test")

  def on_test_end(self, logs=None):
    self._mark("test_end")

  def on_epoch_end(self, epoch, logs=None):
    self._mark("epoch_end")

  def on_train_end(self, logs=None):
    self._mark("train_end")

  def _between(self, first, second):
    marks = self._marks
    return marks[second] - marks[first] if first in marks and second in marks else 0.0

  @property
  def setup_seconds(self):
    return self._between("start", "epoch")

  @property
  def train_seconds(self):
    return self._between("epoch", "test") or self._between("epoch", "stop")

  @property
  def validation_seconds(self):
    return self._between("test", "test_end")

  @property
  def teardown_seconds(self):
    return self._between("test_end", "stop")

  @property
  def total_seconds(self):
    return self._between("start", "stop")

  def summary(self):
    # The teardown in three parts: the epoch-end callbacks, from there to the
    # train-end callbacks, and from those until `fit` returned.
    return {"seconds": self.total_seconds, "setup_seconds": self.setup_seconds,
            "train_steps_seconds": self.train_seconds,
            "validation_seconds": self.validation_seconds,
            "teardown_seconds": self.teardown_seconds,
            "teardown_parts_seconds": [self._between("test_end", "epoch_end"),
                                       self._between("epoch_end", "train_end"),
                                       self._between("train_end", "stop")]}


def epoch_dataset(experiment, splits, epoch):
  """The training batches of `epoch`: a shuffle that depends on (seed, epoch).

  The same function of the epoch number whether the run was resumed or not.
  """
  tc = experiment.train
  dataset = splits.dataset("train", tc.batch_size, shuffle=True, seed=tc.seed,
                           bucket_width=experiment.data.bucket_width, epoch=epoch,
                           pad_to_bucket_edge=tc.jit_compile)
  return dataset.take(tc.steps_per_epoch) if tc.steps_per_epoch else dataset


def steps_per_epoch(experiment, splits, capped=True):
  """The number of training batches in an epoch (the same for every epoch).

  With `capped`, at most `TrainConfig.steps_per_epoch`; else all of them.
  """
  cap = experiment.train.steps_per_epoch if capped else None
  dataset = epoch_dataset(experiment, splits, epoch=0)
  if cap is None and experiment.train.steps_per_epoch:
    tc = dataclasses.replace(experiment.train, steps_per_epoch=None)
    dataset = epoch_dataset(dataclasses.replace(experiment, train=tc), splits, epoch=0)
  count = int(dataset.cardinality())
  return count if count >= 0 else sum(1 for _ in dataset)


def validation_nll(logs, prefix="val_"):
  """The unweighted negative ELBO per sentence: recon + KL (no annealing)."""
  return logs[prefix + "recon"] + logs.get(prefix + "kl", 0.0)


# Settings that change neither the model nor the data it is trained on: a
# resume may change them.
RESUMABLE_CHANGES = ("data.data_dir", "train.log_latent_usage", "train.jit_compile")


def config_differences(previous, experiment):
  """Where two `ExperimentConfig`s differ: ["section.name: old -> new", ...].

  Example:
  >>> from tf_vmfvae import config
  >>> config_differences(config.ExperimentConfig(),
  ...                    config.ExperimentConfig(train=config.TrainConfig(seed=1)))
  ['train.seed: 0 -> 1']
  """
  old, new = dataclasses.asdict(previous), dataclasses.asdict(experiment)
  differences = []
  for section in old:
    if not isinstance(old[section], dict):
      if old[section] != new[section]:
        differences.append(f"{section}: {old[section]!r} -> {new[section]!r}")
      continue
    for name in sorted(set(old[section]) | set(new[section])):
      before, after = old[section].get(name), new[section].get(name)
      if before != after:
        differences.append(f"{section}.{name}: {before!r} -> {after!r}")
  return differences


def check_same_config(model_dir, experiment):
  """Refuses to resume a run under another configuration (raises ValueError).

  The refusal names the settings that differ. `RESUMABLE_CHANGES` may
  differ. Under the "plateau" schedule the epoch budget may too: raising
  `epochs` trains a run longer; a budget schedule's decay is set by its
  `epochs`, so there it may not. Call it before writing anything into
  `model_dir`.
  """
  previous = runs.load_config(model_dir)
  if previous is None:
    return
  allowed = RESUMABLE_CHANGES + (("train.epochs",) if previous.train.lr_schedule == "plateau"
                                 else ())
  differences = [d for d in config_differences(previous, experiment)
                 if d.split(":")[0] not in allowed]
  if differences:
    may_change = ("only --epochs may change, to train it longer"
                  if previous.train.lr_schedule == "plateau"
                  else "a budget schedule's --epochs cannot change")
    raise errors.InvalidValueError(
        f"{model_dir} holds a run with another configuration ({runs.CONFIG_FILE}): "
        f"{'; '.join(differences)}. Resume it with the same flags ({may_change}), or train "
        "into a new --model_dir.")


class DamagedCheckpointError(errors.InvalidValueError):
  """A run's checkpoint cannot be read and no intact earlier one is left."""


def _load_checkpoint(model_dir, state):
  """(model, state) of the latest readable checkpoint of a run.

  A damaged latest checkpoint (truncated, say) is reported in one line and
  the run goes back to the epoch before, whose checkpoint and state are
  kept until the next is complete.

  Raises:
    DamagedCheckpointError: neither can be read.
  """
  damaged = None
  for candidate in (state, state.get("previous")):
    if not candidate:
      break
    path = model_dir / candidate["checkpoint"]
    try:
      model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # pylint: disable=broad-except
      damaged = damaged or (path, _first_line(f"{type(error).__name__}: {error}"))
      continue
    if candidate is not state:
      logger.warning("%s is damaged (%s): resuming from epoch %d (%s) instead.", *damaged,
                     candidate["epoch"], candidate["checkpoint"])
    return model, {**candidate, "previous": state.get("previous") if candidate is state
                   else None}
  raise DamagedCheckpointError(
      f"{damaged[0]} is damaged ({damaged[1]}) and no earlier checkpoint is left that can be "
      "read: train into a new --model_dir.")


class TrainingInterrupted(KeyboardInterrupt):
  """Training was interrupted (Ctrl-C); the message says how to resume."""


def train(experiment, model_dir, strategy=None, verbose="auto", callbacks=(), flags_text=None):
  """Trains (or resumes) an experiment into `model_dir`.

  The run directory is locked while it trains (`runs.RunLock`): a second
  process is refused. Nothing is written into it before the configuration
  has built a model, so a bad value leaves no run behind.

  Args:
    experiment: `tf_vmfvae.config.ExperimentConfig`.
    model_dir: str, where checkpoints, logs and metrics go.
    strategy: a `tf.distribute.Strategy`, default `make_strategy("auto")`.
    verbose: Keras verbosity: 1 progress bar, 2 one line per epoch (and a
      progress line at least every 30 s), 0 none, "auto" (1 on a terminal,
      2 otherwise).
    callbacks: extra Keras callbacks.
    flags_text: the command's flags, written to `flags.txt` (binaries), or None.

  Returns:
    The final metrics dict (also written to metrics.json).

  Raises:
    TrainingInterrupted: on Ctrl-C; the completed epochs are kept.
  """
  model_dir = pathlib.Path(model_dir)
  check_same_config(model_dir, experiment)
  strategy = strategy or make_strategy()
  chief = is_chief(strategy)
  lock = runs.RunLock(model_dir) if chief else contextlib.nullcontext()
  with lock:
    if getattr(lock, "taken_over", None):
      logger.info("Took over %s from process %d, which is gone.", model_dir, lock.taken_over)
    try:
      return _train(experiment, model_dir, strategy, chief, verbose, callbacks, flags_text)
    except KeyboardInterrupt:
      # Whenever it came (in an epoch, or while saving one), the run resumes
      # after the last epoch its state file records.
      done = (runs.load_state(model_dir) or {}).get("epoch", 0)
      raise TrainingInterrupted(
          f"Interrupted in epoch {done + 1}: rerun the same command to resume after epoch "
          f"{done}.") from None


def _train(experiment, model_dir, strategy, chief, verbose, callbacks, flags_text):
  """`train` once the run directory is held."""
  tc = experiment.train
  keras.utils.set_random_seed(tc.seed)
  if verbose == "auto":
    verbose = 1 if os.isatty(1) else 2

  splits = runs.load_data(experiment, model_dir, splits=["train", "valid"])
  valid_ds = splits.dataset("valid", tc.batch_size, bucket_width=experiment.data.bucket_width,
                            pad_to_bucket_edge=tc.jit_compile)
  steps = steps_per_epoch(experiment, splits)
  # Sentences: target tokens incl. <eos>; documents: words.
  tokens_per_step = splits.num_tokens("train") / steps_per_epoch(experiment, splits, capped=False)

  state = runs.load_state(model_dir)
  with strategy.scope():
    if state is not None:
      model, state = _load_checkpoint(model_dir, state)
      model.jit_compile = tc.jit_compile  # May change on resume: not saved with the model.
      if tc.lr_schedule == "plateau":  # A budget's rate comes with its optimizer.
        model.optimizer.learning_rate.assign(state["learning_rate"])
      logger.info("Resuming %s after epoch %d.", model_dir, state["epoch"])
    else:
      state = {"epoch": 0, "checkpoint": None, "learning_rate": tc.learning_rate,
               "best_val_nll": math.inf, "best_epoch": 0, "bad_epochs": 0,
               "history": [], "train_seconds": 0.0, "stopped": None}
      model = build_model(experiment, len(splits.vocabulary), splits.num_labels)
      model.compile(optimizer=optimization.make_optimizer(tc, steps),
                    jit_compile=tc.jit_compile)
  check_xla_support(model, tc.jit_compile)  # A resumed run's model too.
  if chief:  # The configuration has built a model: now it may be written.
    (model_dir / runs.CHECKPOINTS_DIR).mkdir(parents=True, exist_ok=True)
    removed = runs.remove_partial_files(model_dir)
    if removed:
      logger.info("Removed what an interrupted run left half-written: %s", ", ".join(removed))
    if not (model_dir / runs.VOCAB_FILE).is_file():
      runs.atomic_save(splits.vocabulary.save, model_dir / runs.VOCAB_FILE)
    runs.atomic_save(experiment.save, model_dir / runs.CONFIG_FILE)
    if flags_text is not None:
      runs.atomic_write(model_dir / runs.FLAGS_FILE, flags_text)
  machine = runs.describe_machine()
  state.setdefault("machines", []).append(
      {"from_epoch": state["epoch"], "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **machine})
  logger.info("Model: %d parameters; %d replicas; on %s.", model.count_params(),
              strategy.num_replicas_in_sync, runs.format_machine(machine))

  # TensorBoard logs, like every file of the run, come from the chief only.
  tensorboard = ([keras.callbacks.TensorBoard(log_dir=str(model_dir / runs.LOGS_DIR),
                                              write_graph=False)] if chief else [])
  fixed_validation_seed = FixedValidationSeed(model, tc.seed)
  latent_usage = ([LatentUsageLogger(model, valid_ds, tc.seed)]
                  if tc.log_latent_usage and getattr(model, "latent", None) is not None
                  else [])
  timer = EpochTimer()
  progress = [ProgressLogger(tc.epochs, steps, tokens_per_step)] if verbose == 2 else []
  while state["epoch"] < tc.epochs and state["stopped"] is None:
    epoch = state["epoch"]
    before = copy.deepcopy({k: v for k, v in state.items() if k != "previous"})
    train_ds = epoch_dataset(experiment, splits, epoch)
    timer.start()
    try:
      history = model.fit(train_ds, validation_data=valid_ds, initial_epoch=epoch,
                          shuffle=False, epochs=epoch + 1, verbose=verbose,
                          callbacks=[timer, *progress, fixed_validation_seed, *latent_usage, *tensorboard,
                                     *callbacks])
    except tf.errors.UnavailableError as error:
      raise WorkerLostError(
          f"A worker of the cluster stopped during epoch {epoch + 1} ("
          f"{_first_line(error.message)}). The run keeps its last completed epoch: "
          "restart every worker with the same command to resume.") from error
    timer.stop()
    logs = {k: float(v[-1]) for k, v in history.history.items()}
    val_nll = validation_nll(logs)
    logs.update(epoch=epoch + 1, learning_rate=state["learning_rate"], val_nll=val_nll,
                **timer.summary())
    if tokens_per_step:
      logs["train_tokens_per_second"] = steps * tokens_per_step / timer.train_seconds
    state["history"].append(logs)
    state["train_seconds"] += timer.total_seconds
    save_start = time.time()
    state["epoch"] = epoch + 1
    if apply_plateau_rule(state, val_nll, tc) and chief:
      runs.save_model(model, model_dir / runs.BEST_MODEL)
    if tc.lr_schedule == "plateau":
      model.optimizer.learning_rate.assign(state["learning_rate"])
    else:
      state["learning_rate"] = optimization.current_learning_rate(model.optimizer)
    if not math.isfinite(logs["loss"]):
      state["stopped"] = "the loss is not finite"
    state["checkpoint"] = runs.checkpoint_name(epoch + 1)
    # The epoch before stays until this one is complete: a damaged
    # checkpoint falls back to it (`_load_checkpoint`).
    state["previous"] = before if before["checkpoint"] else None
    if chief:
      runs.save_model(model, model_dir / state["checkpoint"])
    logs["save_seconds"] = time.time() - save_start
    if chief:
      runs.atomic_write_json(model_dir / runs.STATE_FILE, state)
      keep = {state["checkpoint"], before["checkpoint"]}
      for path in (model_dir / runs.CHECKPOINTS_DIR).glob("epoch-*.keras"):
        if f"{runs.CHECKPOINTS_DIR}/{path.name}" not in keep:
          path.unlink(missing_ok=True)
    logger.info(
        "epoch %d: val NLL %.3f (best %.3f at %d), lr %.4g; %.0f s (fit setup %.1f s, "
        "steps %.0f s, validation %.0f s, after %.1f s; saving %.1f s)%s; %.0f s elapsed",
        epoch + 1, val_nll, state["best_val_nll"], state["best_epoch"],
        logs["learning_rate"], logs["seconds"], logs["setup_seconds"],
        logs["train_steps_seconds"], logs["validation_seconds"], logs["teardown_seconds"],
        logs["save_seconds"], f", {logs['train_tokens_per_second']:.0f} tokens/s"
        if "train_tokens_per_second" in logs else "", state["train_seconds"])

  metrics = {
      "epochs": state["epoch"], "best_epoch": state["best_epoch"],
      "best_val_nll": state["best_val_nll"], "train_seconds": state["train_seconds"],
      "stopped": state["stopped"] or f"reached {tc.epochs} epochs",
      "last": state["history"][-1] if state["history"] else {},
  }
  if chief:
    runs.atomic_write_json(model_dir / runs.METRICS_FILE, metrics)
  return metrics
