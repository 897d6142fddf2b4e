"""What the experiment binaries share: flags, the runs they train, CSV, figures.

An experiment trains a set of named *settings* (a model's flagfile plus
variations), each into its own run directory under `runs_dir`, with the
`python -m tf_vmfvae.train` binary: a finished run is skipped, an
interrupted one resumes, and a setting whose run already exists (say
`runs/ptb_vmf` from the Tables runs) is reused, never retrained. At
--scale=small every setting also takes `configs/experiments_small.flags`
(tiny model, a few dozen steps); at --scale=full it is the flagfile as
shipped.
"""

import csv
import dataclasses
import os
import pathlib
import subprocess
import sys
import time

SCALES = ("small", "full")
CONFIGS_DIR = pathlib.Path(__file__).resolve().parents[2] / "configs"
SMALL_FLAGFILE = CONFIGS_DIR / "experiments_small.flags"


@dataclasses.dataclass(frozen=True)
class Setting:
  """One trained model of an experiment.

  Attributes:
    name: its run directory's name under `runs_dir`.
    label: how tables and plots call it.
    flags: `python -m tf_vmfvae.train` flags (no --model_dir).
  """
  name: str
  label: str
  flags: tuple


def config_flags(config_name, scale, *extra):
  """The train flags of `configs/<config_name>.flags` at `scale`, then `extra`."""
  check_scale(scale)
  flagfiles = [f"--flagfile={CONFIGS_DIR / (config_name + '.flags')}"]
  if scale == "small":
    flagfiles.append(f"--flagfile={SMALL_FLAGFILE}")
  return tuple(flagfiles) + tuple(extra)


class TrainingError(ChildProcessError):
  """A setting's training run failed (its log says why)."""


def train_settings(settings, runs_dir, num_threads=0, parallel=1):
  """Trains (or resumes, or skips when finished) every setting.

  Args:
    settings: `Setting`s with distinct names.
    runs_dir: where their run directories go.
    num_threads: TensorFlow threads of each run (0: all cores).
    parallel: how many runs train at once (give each num_threads=1 on 2 cores).

  Returns:
    {name: run directory (pathlib.Path)}.

  Raises:
    TrainingError: a run failed; names its log.
  """
  runs_dir = pathlib.Path(runs_dir)
  runs_dir.mkdir(parents=True, exist_ok=True)
  pending, running, done = list(settings), [], {}
  start = time.time()
  while pending or running:
    while pending and len(running) < max(1, parallel):
      setting = pending.pop(0)
      model_dir = runs_dir / setting.name
      log_path = runs_dir / f"{setting.name}.log"
      command = [sys.executable, "-m", "tf_vmfvae.train", *setting.flags,
                 f"--model_dir={model_dir}", f"--num_threads={num_threads}", "--verbose=2"]
      print(f"[{time.time() - start:6.0f} s] training {setting.label} into {model_dir}",
            flush=True)
      log = open(log_path, "a")
      running.append((setting, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                                cwd=CONFIGS_DIR.parent), log, log_path))
    time.sleep(0.2)
    for item in list(running):
      setting, process, log, log_path = item
      if process.poll() is None:
        continue
      running.remove(item)
      log.close()
      if process.returncode:
        for _, other, other_log, _ in running:
          other.kill()
          other_log.close()
        raise TrainingError(f"Training {setting.label} failed (exit {process.returncode}); "
                            f"see {log_path}: {_last_line(log_path)}")
      done[setting.name] = runs_dir / setting.name
      print(f"[{time.time() - start:6.0f} s] {setting.label}: done", flush=True)
  return {s.name: done[s.name] for s in settings}


def train_for(settings, output_dir, scale, runs_dir=None, num_threads=0, parallel=1):
  """Trains (or reuses) an experiment's settings at `scale`.

  Args:
    settings: the experiment's function of the scale, returning its settings:
      a dict of `Setting`s, or a list whose items are `Setting`s or tuples
      ending with one.
    output_dir, scale, runs_dir, num_threads, parallel: of the binary; the
      runs go to `runs_dir`, default `<output_dir>/runs_<scale>`.

  Returns:
    (what `settings(scale)` returned, {setting name: run directory}).
  """
  check_scale(scale)
  chosen = settings(scale)
  items = chosen.values() if isinstance(chosen, dict) else chosen
  flat = [item[-1] if isinstance(item, tuple) else item for item in items]
  return chosen, train_settings(flat, default_runs_dir(output_dir, scale, runs_dir),
                                num_threads=num_threads, parallel=parallel)


def _last_line(path):
  lines = [line for line in pathlib.Path(path).read_text(errors="replace").splitlines()
           if line.strip()]
  return lines[-1] if lines else "(empty log)"


def test_metrics(model_dir, split="test"):
  """The run's ELBO, KL, PPL, MI and active units on `split` (best checkpoint).

  The importance-weighted bound is the Tables' job (`python -m
  tf_vmfvae.evaluate`); the experiments compare models by the ELBO.
  """
  from tf_vmfvae import evaluate_lib  # pylint: disable=g-import-not-at-top
  return evaluate_lib.evaluate(model_dir, split=split, num_importance_samples=0,
                               progress=False)


def history(model_dir):
  """The per-epoch logs of a run (its state.json history)."""
  from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
  return runs.load_state(model_dir)["history"]


def write_csv(path, rows):
  """Writes a list of dicts (same keys) as CSV; returns the path."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  return path


def read_csv(path):
  """Reads a CSV written by `write_csv`; numbers come back as floats."""
  def value(text):
    try:
      return float(text)
    except ValueError:
      return text
  with open(path, newline="") as f:
    return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def format_rows(rows, columns, title, digits=3):
  """A plain-text table of `rows` (dicts) over `columns`, floats to `digits`."""
  def cell(v):
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)
  table = [columns] + [[cell(r[c]) for c in columns] for r in rows]
  widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
  lines = [title] + ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in table]
  return "\n".join(lines)


def pyplot():
  """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def save_figure(figure, path, dpi=110):
  """Lays out, writes and closes a matplotlib figure."""
  figure.tight_layout()
  figure.savefig(path, dpi=dpi)
  pyplot().close(figure)


def check_scale(scale):
  if scale not in SCALES:
    raise ValueError(f"`scale` must be one of {list(SCALES)}, got {scale!r}.")


def main_for(run, trains=False):
  """Runs `run(output_dir, scale[, runs_dir, num_threads, parallel])` as an
  absl binary with one-line user errors; `trains` adds the training flags."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from tf_vmfvae import cli  # pylint: disable=g-import-not-at-top
  output_dir = flags.DEFINE_string("output_dir", None, "Where the CSV and PNG go.")
  scale = flags.DEFINE_enum("scale", "small", list(SCALES),
                            "small: minutes on a CPU; full: the paper's setting.")
  flags.mark_flag_as_required("output_dir")
  if trains:
    runs_dir = flags.DEFINE_string(
        "runs_dir", None, "Where each setting's run directory goes (finished runs are "
        "reused, interrupted ones resumed). Default: <output_dir>/runs_<scale>.")
    num_threads = flags.DEFINE_integer("num_threads", 0,
                                       "TensorFlow threads of each run (0: all cores).")
    parallel = flags.DEFINE_integer("parallel", 1, "Runs trained at once.")

  def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not trains:
      run(output_dir.value, scale.value)
      return
    from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
    runs.set_num_threads(num_threads.value)
    run(output_dir.value, scale.value, runs_dir=runs_dir.value,
        num_threads=num_threads.value, parallel=parallel.value)

  cli.run(main)


def default_runs_dir(output_dir, scale, runs_dir=None):
  return pathlib.Path(runs_dir) if runs_dir else pathlib.Path(output_dir) / f"runs_{scale}"


def flag_value(config_name, name):
  """The value `configs/<config_name>.flags` gives `--name`, as text, or None."""
  value = None
  for line in (CONFIGS_DIR / (config_name + ".flags")).read_text().splitlines():
    if line.startswith(f"--{name}="):
      value = line.split("=", 1)[1].strip()
  return value


def setting(config_name, label, scale, *extra):
  """A `Setting` of `configs/<config_name>.flags` plus `extra` flags.

  Its run directory is named after the flagfile and the extra flags (e.g.
  `ptb_inputless` or `ptb_inputless__kappa=20`), so experiments that need the
  same model share one run.
  """
  suffix = "__".join(flag.lstrip("-").replace("/", "_").replace(":", "_").replace(",", "_")
                     for flag in extra)
  return Setting(name=config_name + ("__" + suffix if suffix else ""), label=label,
                 flags=config_flags(config_name, scale, *extra))


def load_model(model_dir):
  """(model, its test sentences as id arrays, vocabulary) of a trained NVRNN run."""
  from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
  model, experiment = runs.load_trained(model_dir)
  splits = runs.load_data(experiment, model_dir, splits=["train", "test"])
  return model, splits


def encode_modes(model, ids, batch_size=256):
  """The posterior mode of each sentence (vMF: mean direction; Gaussian: mean),
  float32 [len(ids), latent_dim], in the order of `ids`."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tf_vmfvae.data import pipeline  # pylint: disable=g-import-not-at-top
  modes = []
  for start in range(0, len(ids), batch_size):
    chunk = ids[start:start + batch_size]
    # One unbucketed batch of the whole chunk: the pipeline keeps its order.
    batch = next(iter(pipeline.sentence_dataset(chunk, batch_size=len(chunk), bucket_width=0)))
    parameters = model.latent.posterior_parameters(model.encode_features(batch))
    modes.append(model.latent.mode(parameters).numpy())
  return np.concatenate(modes)
