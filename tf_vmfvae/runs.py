"""The run directory: its file layout, writing, loading and listing.

Every binary reads and writes a run through this module; none reaches into
another's library for a file name.

Layout of a run directory (all plain files, no pickle):
  config.json                the ExperimentConfig
  flags.txt                  the flags of the command that trained it
  vocab.txt                  one token per line, in id order
  checkpoints/epoch-NNN.keras  the latest completed epoch (model + optimizer)
  state.json                 epoch, learning rate, best, history, the machines it
                             ran on (one entry per start); written last
  best.keras                 the best model on validation
  lock                       while a process trains it: that process's id and host
  metrics.json               final metrics when training ends
  eval_<split>.json          what `python -m tf_vmfvae.evaluate` measured
  logs/                      TensorBoard

Every file is written whole or not at all (a temporary file, then an atomic
rename), so a run killed at any moment resumes from its last state.

Example:
>>> import tempfile
>>> run = tempfile.mkdtemp()
>>> atomic_write_json(pathlib.Path(run) / STATE_FILE, {"epoch": 3})
>>> load_state(run)["epoch"]
3
"""

import json
import os
import pathlib
import platform
import statistics

from tf_vmfvae import config as config_lib
from tf_vmfvae import errors

CONFIG_FILE = "config.json"
FLAGS_FILE = "flags.txt"
VOCAB_FILE = "vocab.txt"
STATE_FILE = "state.json"
BEST_MODEL = "best.keras"
METRICS_FILE = "metrics.json"
CHECKPOINTS_DIR = "checkpoints"
LOGS_DIR = "logs"
LOCK_FILE = "lock"


class NoTrainedModelError(errors.UserError, FileNotFoundError):
  """A run directory holds no trained model (yet)."""


class RunLockedError(errors.UserError, FileExistsError):
  """Another live process is training into the same run directory."""


def _process_alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # Alive, someone else's.
  return True


class RunLock:
  """Holds a run directory for one training process (a context manager).

  The lock is the file `lock` in the run directory, created exclusively,
  holding the process id and host name. A second process is refused with
  `RunLockedError`, which names the holder; a lock whose process is gone
  (killed, machine restarted) is taken over. The file goes when the holder
  exits the context.

  Example:
  >>> import tempfile
  >>> run = tempfile.mkdtemp()
  >>> with RunLock(run):
  ...   (pathlib.Path(run) / LOCK_FILE).is_file()
  True
  >>> (pathlib.Path(run) / LOCK_FILE).exists()
  False
  """

  def __init__(self, model_dir):
    self.path = pathlib.Path(model_dir) / LOCK_FILE
    self.taken_over = None

  def __enter__(self):
    self.path.parent.mkdir(parents=True, exist_ok=True)
    me = f"{os.getpid()} {platform.node()}"
    for _ in range(2):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
      except FileExistsError:
        holder = self.path.read_text().split() if self.path.is_file() else []
        pid = int(holder[0]) if holder and holder[0].isdigit() else None
        host = holder[1] if len(holder) > 1 else platform.node()
        if pid is not None and (host != platform.node() or _process_alive(pid)):
          raise RunLockedError(
              f"{self.path.parent} is being trained by process {pid} on {host}: wait for it, "
              f"or stop it (kill {pid}) and rerun this command to resume.") from None
        self.taken_over = pid
        self.path.unlink(missing_ok=True)  # Its process is gone: take the run over.
        continue
      with os.fdopen(fd, "w") as f:
        f.write(me + "\n")
      return self
    raise RunLockedError(f"{self.path} could not be taken: another process took it first.")

  def __exit__(self, *exc_info):
    self.path.unlink(missing_ok=True)
    return False


def checkpoint_name(epoch):
  """The checkpoint file of a completed epoch, relative to the run directory."""
  return f"{CHECKPOINTS_DIR}/epoch-{epoch:03d}.keras"


def eval_path(model_dir, split):
  return pathlib.Path(model_dir) / f"eval_{split}.json"


TMP_SUFFIX = ".tmp"


def remove_partial_files(model_dir):
  """Deletes what a killed process left half-written (`*.tmp*`); returns their names.

  Every file of a run is written under a temporary name and renamed when
  complete (`atomic_write`, `save_model`), so a temporary file is never
  part of the run's state.
  """
  removed = []
  for path in pathlib.Path(model_dir).rglob(f"*{TMP_SUFFIX}*"):
    if path.is_file():
      path.unlink()
      removed.append(path.name)
  return removed


def atomic_save(save, path, extension=""):
  """Writes a file whole or not at all: `save(temporary path)`, then a rename.

  Args:
    save: a function that writes a file at the path it is given (e.g.
      `Vocabulary.save`, `keras.Model.save`).
    path: the final path.
    extension: appended to the temporary name, for writers that insist on
      one (".keras").
  """
  tmp = f"{path}{TMP_SUFFIX}{extension}"
  save(tmp)
  os.replace(tmp, path)


def atomic_write(path, text):
  """Writes `text` to `path` through a temporary file and a rename."""
  def write(tmp):
    with open(tmp, "w") as f:
      f.write(text)
  atomic_save(write, path)


def atomic_write_json(path, value):
  atomic_write(path, json.dumps(value, indent=2) + "\n")


def ensure_writable_dir(path, what):
  """Creates directory `path` if needed and checks that it can be written.

  Args:
    path: str or Path.
    what: how the user named it, for the message (e.g. "--export_dir").

  Raises:
    errors.UnusablePathError: it (or a parent) is a file, it cannot be
      created, or it cannot be written.
  """
  path = pathlib.Path(path)
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as error:
    raise errors.UnusablePathError(
        f"{what}={path} cannot be used as a directory ({error.strerror or error}): "
        "give a folder that can be created or written.") from None
  if not os.access(path, os.W_OK | os.X_OK):
    raise errors.UnusablePathError(f"{what}={path} is not writable: give a folder you can write.")
  return path


def save_model(model, path):
  """Saves a Keras model to `path` (.keras) through a temporary file."""
  atomic_save(model.save, path, extension=".keras")


def load_config(model_dir):
  """The run's ExperimentConfig, or None when the directory holds no run."""
  path = pathlib.Path(model_dir) / CONFIG_FILE
  return config_lib.ExperimentConfig.load(path) if path.is_file() else None


def load_state(model_dir):
  """The run's state dict (epoch, history, ...), or None before its first epoch."""
  path = pathlib.Path(model_dir) / STATE_FILE
  return json.loads(path.read_text()) if path.is_file() else None


def load_vocabulary(model_dir, family):
  """The saved vocabulary: a `Vocabulary` (NVRNN) or `WordList` (NVDM), or None."""
  from tf_vmfvae.data import documents  # pylint: disable=g-import-not-at-top
  from tf_vmfvae.data import text  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(model_dir) / VOCAB_FILE
  if not path.is_file():
    return None
  return (documents.WordList if family == "nvdm" else text.Vocabulary).load(path)


def load_data(experiment, model_dir=None, splits=None):
  """Loads an experiment's corpus (a `SentenceSplits` or `DocumentSplits`).

  A sentence corpus reuses the vocabulary saved in `model_dir`, if any, so
  a trained model sees the ids it was trained on.
  """
  from tf_vmfvae import data  # pylint: disable=g-import-not-at-top
  if experiment.family == "nvdm":
    return data.load_document_splits(experiment.data, splits=splits)
  vocabulary = None if model_dir is None else load_vocabulary(model_dir, "nvrnn")
  return data.load_sentence_splits(experiment.data, vocabulary=vocabulary, splits=splits)


def load_trained(model_dir, checkpoint="best"):
  """Returns (model, ExperimentConfig) of a trained run directory.

  Args:
    model_dir: a directory written by `train_lib.train`.
    checkpoint: "best" (best validation NLL) or "last" (latest epoch).

  Raises:
    NoTrainedModelError: nothing trained there yet.
  """
  import keras  # pylint: disable=g-import-not-at-top
  from tf_vmfvae import models  # pylint: disable=g-import-not-at-top
  del models  # Imported to register the model classes for loading.
  model_dir = pathlib.Path(model_dir)
  path = model_dir / BEST_MODEL
  if checkpoint == "last":
    state = load_state(model_dir)
    path = model_dir / state["checkpoint"] if state else path
  experiment = load_config(model_dir)
  if experiment is None or not path.is_file():
    raise NoTrainedModelError(
        f"No trained model in {model_dir}: train into it first "
        "(python -m tf_vmfvae.train --model_dir=...).")
  if not (model_dir / VOCAB_FILE).is_file():
    raise NoTrainedModelError(
        f"{model_dir / VOCAB_FILE} is missing: the model's ids cannot be mapped to words "
        "without the vocabulary it was trained with. Restore the file, or retrain.")
  model = keras.saving.load_model(path, safe_mode=True, compile=False)
  return model, experiment


def set_num_threads(num_threads):
  """Caps TensorFlow's intra- and inter-op CPU thread pools (0: TF's default).

  Call before TensorFlow runs anything. One thread each suits several runs
  sharing a small machine.
  """
  if num_threads < 0:
    raise errors.InvalidValueError(f"`num_threads` must be >= 0, got {num_threads}.")
  if num_threads:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.threading.set_intra_op_parallelism_threads(num_threads)
    tf.config.threading.set_inter_op_parallelism_threads(num_threads)


SIMD_FEATURES = ("avx2", "avx512f", "amx_tile")


def describe_machine():
  """What training runs on: CPU model and SIMD level, CPUs usable, TF's thread cap, GPUs.

  A run records one of these each time it starts or resumes (`state.json`,
  "machines"), so its numbers can say where they were measured. Two CPUs
  of the same name can differ (an AVX2 and an AVX-512 "AMD EPYC"), hence
  "simd": which of `SIMD_FEATURES` the CPU reports. `num_threads` 0 means
  TensorFlow's default (all CPUs).

  Example:
  >>> sorted(describe_machine())
  ['cpu', 'cpus', 'gpus', 'num_threads', 'simd']
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  info = {}
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
  except OSError:
    pass
  flags = set(info.get("flags", "").split())
  cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  gpus = [tf.config.experimental.get_device_details(device).get("device_name", device.name)
          for device in tf.config.list_physical_devices("GPU")]
  return {"cpu": info.get("model name") or platform.processor() or platform.machine(),
          "simd": [feature for feature in SIMD_FEATURES if feature in flags],
          "cpus": cpus, "num_threads": tf.config.threading.get_intra_op_parallelism_threads(),
          "gpus": gpus}


def format_machine(machine):
  """One line for a `describe_machine` dict.

  Example:
  >>> format_machine({"cpu": "AMD EPYC", "simd": ["avx2", "avx512f"], "cpus": 2,
  ...                 "num_threads": 1, "gpus": []})
  'AMD EPYC (avx512f) x2 (1 thread)'
  """
  threads = machine.get("num_threads") or 0
  simd = machine.get("simd")
  line = f"{machine['cpu']}{f' ({simd[-1]})' if simd else ''} x{machine['cpus']}"
  if threads:
    line += f" ({threads} thread{'s' if threads > 1 else ''})"
  if machine.get("gpus"):
    line += " + " + ", ".join(machine["gpus"])
  return line


def list_runs(root):
  """Summaries of the run directories under `root` (any depth), sorted by path.

  Each: {"model_dir", "family", "dataset", "latent", "epochs",
  "epoch_budget", "best_epoch", "best_val_nll", "learning_rate",
  "train_seconds", "tokens_per_second" (the median over its epochs: an
  epoch paused or sharing the CPU reads low), "machine" (where it last ran,
  a `describe_machine` dict, or None for runs older than that record),
  "stopped" (why training ended, or None), "finished" (final metrics
  written)}.
  """
  runs = []
  for config_path in sorted(pathlib.Path(root).rglob(CONFIG_FILE)):
    model_dir = config_path.parent
    experiment = load_config(model_dir)
    state = load_state(model_dir) or {}
    speeds = [logs["train_tokens_per_second"] for logs in state.get("history", [])
              if "train_tokens_per_second" in logs]
    runs.append({
        "model_dir": str(model_dir), "family": experiment.family,
        "dataset": experiment.data.dataset, "latent": experiment.model.get("latent"),
        "epochs": state.get("epoch", 0), "epoch_budget": experiment.train.epochs,
        "best_epoch": state.get("best_epoch"), "best_val_nll": state.get("best_val_nll"),
        "learning_rate": state.get("learning_rate"),
        "train_seconds": state.get("train_seconds"),
        "tokens_per_second": statistics.median(speeds) if speeds else None,
        "machine": (state.get("machines") or [None])[-1],
        "stopped": state.get("stopped"),
        "finished": (model_dir / METRICS_FILE).is_file(),
    })
  return runs


def format_runs(runs):
  """A table of `list_runs`, with the command that resumes each unfinished run.

  Example:
  >>> print(format_runs([]))
  No runs.
  """
  if not runs:
    return "No runs."
  header = ("run", "model", "epoch", "best val NLL (epoch)", "lr", "train time", "tokens/s",
            "status", "last machine")
  rows = []
  for run in runs:
    best = ("-" if run["best_val_nll"] is None
            else f"{run['best_val_nll']:.2f} ({run['best_epoch']})")
    hours = run["train_seconds"]
    rows.append((
        run["model_dir"], f"{run['family']}/{run['dataset']}/{run['latent']}",
        f"{run['epochs']}/{run['epoch_budget']}", best,
        "-" if run["learning_rate"] is None else f"{run['learning_rate']:.3g}",
        "-" if hours is None else f"{hours / 3600:.2f} h",
        "-" if run["tokens_per_second"] is None else f"{run['tokens_per_second']:.0f}",
        "finished" if run["finished"] else "resumable",
        "-" if run.get("machine") is None else format_machine(run["machine"])))
  widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
  lines = ["  ".join(f"{v:<{w}}" for v, w in zip(row, widths)).rstrip()
           for row in [header] + rows]
  for run in runs:
    if not run["finished"]:
      lines.append(f"resume: python -m tf_vmfvae.train "
                   f"--flagfile={pathlib.Path(run['model_dir']) / FLAGS_FILE}")
  return "\n".join(lines)


def main(argv):
  """`python -m tf_vmfvae.runs [ROOT ...]`: lists the runs under each root (default runs/)."""
  for root in argv[1:] or ["runs"]:
    if not pathlib.Path(root).is_dir():
      raise errors.UnusablePathError(f"{root} is not a directory: give the folder that holds "
                               "the run directories (default runs/).")
    print(format_runs(list_runs(root)))


if __name__ == "__main__":
  from tf_vmfvae import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
