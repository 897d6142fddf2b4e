"""What the experiment binaries share: flags, the runs they train, CSV, figures.

An experiment trains a set of named *settings* (a model's flagfile plus
variations), each into its own run directory under `runs_dir`, with the
`python -m tf_vmfvae.train` binary: a finished run is skipped, an
interrupted one resumes, and a setting whose run already exists is reused,
never retrained. At --scale=small every setting also takes
`configs/experiments_small.flags` (tiny model, a few dozen steps); at
--scale=full the flagfile as shipped followed by `configs/budget.flags`
(a fixed epoch budget with a cosine decay), so every full-size model costs
the same known price.

Experiments that name a `record` keep one row per finished setting in
`<output_dir>/<record>_runs.csv` (`RECORD_COLUMNS`: its flags, seed,
epochs, wall time, machine, validation and test measures, its per-epoch
validation history, and the experiment's own measures), written as soon as
the setting finishes: hours of training survive the loss of the run
directories, and a setting with a row is neither trained nor measured
again. The experiment builds its tables and figures from the rows.
"""

import csv
import dataclasses
import functools
import io
import json
import os
import pathlib
import subprocess
import sys
import time

from tf_vmfvae import config
from tf_vmfvae import errors

SCALES = ("small", "full")
CONFIGS_DIR = config.configs_dir()
SMALL_FLAGFILE = CONFIGS_DIR / "experiments_small.flags"
BUDGET_FLAGFILE = CONFIGS_DIR / "budget.flags"
# The full-scale grid's first models were batched in length buckets 5 wide
# (the trainer's default then); the rest keep them, so that its rows compare
# on one recipe (the default is now 1: docs/PERFORMANCE.md).
FULL_SCALE_BUCKET_WIDTH = 5
# The columns every record row starts with (`record_row`).
RECORD_COLUMNS = ("setting", "label", "flags", "seed", "epochs", "best_epoch",
                  "train_seconds", "machine", "best_val_nll", "valid_nll", "test_nll",
                  "test_recon",
                  "test_kl", "test_ppl", "test_mi", "test_active_units", "history")
# Per-epoch validation logs kept in the `history` column (JSON).
HISTORY_KEYS = ("epoch", "val_nll", "val_kl", "val_mi", "val_active_units", "seconds",
                "learning_rate", "val_kappa_mean", "val_kappa_p10", "val_kappa_p90")


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


def config_flags(config_name, scale, *extra, budget=True):
  """The train flags of `configs/<config_name>.flags` at `scale`, then `extra`.

  The full scale trains to `configs/budget.flags`, or with `budget=False` to
  the flagfile's own schedule (to convergence), in length buckets
  `FULL_SCALE_BUCKET_WIDTH` wide; the small scale always to
  `configs/experiments_small.flags`.
  """
  check_scale(scale)
  flagfiles = [f"--flagfile={CONFIGS_DIR / (config_name + '.flags')}"]
  if scale == "small":
    flagfiles.append(f"--flagfile={SMALL_FLAGFILE}")
  else:
    if budget:
      flagfiles.append(f"--flagfile={BUDGET_FLAGFILE}")
    flagfiles.append(f"--bucket_width={FULL_SCALE_BUCKET_WIDTH}")
  return tuple(flagfiles) + tuple(extra)


class TrainingError(errors.UserError, ChildProcessError):
  """A setting's training run failed (its log says why)."""


class NothingRecordedError(errors.UserError, LookupError):
  """An experiment was asked to report, but none of its settings has a row."""


def train_settings(settings, runs_dir, num_threads=0, parallel=1, on_done=None):
  """Trains (or resumes, or skips when finished) every setting.

  Args:
    settings: `Setting`s with distinct names.
    runs_dir: where their run directories go.
    num_threads: TensorFlow threads of each run (0: all cores).
    parallel: how many runs train at once (give each num_threads=1 on 2 cores).
    on_done: called as `on_done(setting, run_dir)` as soon as each finishes,
      or None.

  Returns:
    {name: run directory (pathlib.Path)}.

  Raises:
    TrainingError: a run failed; names its log.
  """
  runs_dir = pathlib.Path(runs_dir).resolve()  # The runs start in another folder.
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
      if on_done is not None:
        on_done(setting, done[setting.name])
  return {s.name: done[s.name] for s in settings}


def train_for(settings, output_dir, scale, runs_dir=None, num_threads=0, parallel=1,
              record=None, measure=None, train=True):
  """Trains (or reuses) an experiment's settings at `scale`.

  Args:
    settings: the experiment's function of the scale, returning its settings:
      a dict of `Setting`s, or a list whose items are `Setting`s or tuples
      ending with one.
    output_dir, scale, runs_dir, num_threads, parallel: of the binary; the
      runs go to `runs_dir`, default `<output_dir>/runs_<scale>`.
    record: the experiment's name: keep a row per setting in
      `<output_dir>/<record>_runs.csv` (see the module docstring), or None.
    measure: with `record`, `measure(setting, run_dir)` -> dict of the
      experiment's own measures, added to the row (None: none).
    train: False (with `record`): train nothing; what `settings(scale)`
      returned keeps only the settings that have a row, so the experiment
      reports on the part of its grid that is finished.

  Returns:
    (what `settings(scale)` returned, {setting name: run directory}) without
    `record`; with it, (what `settings(scale)` returned, {setting name: its
    row}), every row read back from the CSV.

  Raises:
    NothingRecordedError: `train` is False and no setting has a row.
  """
  check_scale(scale)
  chosen = settings(scale)
  items = chosen.values() if isinstance(chosen, dict) else chosen
  flat = [item[-1] if isinstance(item, tuple) else item for item in items]
  runs_dir = default_runs_dir(output_dir, scale, runs_dir)
  if record is None:
    if not train:
      raise ValueError("`train=False` needs a `record` to report from.")
    return chosen, train_settings(flat, runs_dir, num_threads=num_threads, parallel=parallel)
  path = record_path(output_dir, record)
  have = {row["setting"] for row in read_records(path)}
  waiting = [s for s in flat if s.name not in have]
  if len(waiting) < len(flat):
    print(f"{len(flat) - len(waiting)} of {len(flat)} settings already recorded in {path}",
          flush=True)
  if not train:
    if len(waiting) == len(flat):
      raise NothingRecordedError(f"No setting of {record} is recorded in {path} yet: train "
                                 f"some first (without --report_only).")
    if waiting:
      print(f"Reporting without the {len(waiting)} settings not recorded yet: "
            f"{', '.join(s.label for s in waiting)}", flush=True)
    rows = {row["setting"]: row for row in read_records(path)}
    return _recorded_only(chosen, have), {s.name: rows[s.name] for s in flat
                                          if s.name in have}

  def on_done(setting, run_dir):
    row = record_row(setting, run_dir)
    if measure is not None:
      row.update(measure(setting, run_dir))
    append_record(path, row)
    print(f"recorded {setting.label} in {path}", flush=True)

  train_settings(waiting, runs_dir, num_threads=num_threads, parallel=parallel,
                 on_done=on_done)
  rows = {row["setting"]: row for row in read_records(path)}
  return chosen, {s.name: rows[s.name] for s in flat}


def _recorded_only(chosen, have):
  """`chosen` (a dict or list of settings) without the settings not in `have`."""
  def name(item):
    return (item[-1] if isinstance(item, tuple) else item).name
  if isinstance(chosen, dict):
    return {key: item for key, item in chosen.items() if name(item) in have}
  return [item for item in chosen if name(item) in have]


def record_path(output_dir, record):
  return pathlib.Path(output_dir) / f"{record}_runs.csv"


def record_row(setting, run_dir):
  """The `RECORD_COLUMNS` of a finished run: what it is, cost and measured.

  "best_val_nll" is the trainer's (the validation ELBO it selected the best
  epoch on); "valid_nll" and the "test_*" columns are the best checkpoint's,
  measured here on the whole split with the same evaluator, so that
  settings trained by different versions of the trainer compare on one
  footing: choices between settings use "valid_nll".
  """
  from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
  state = runs.load_state(run_dir)
  experiment = runs.load_config(run_dir)
  test = test_metrics(run_dir)
  machine = state["machines"][-1] if state.get("machines") else None
  history = [{k: logs[k] for k in HISTORY_KEYS if k in logs} for logs in state["history"]]
  flags = " ".join(flag.replace(str(CONFIGS_DIR.parent) + os.sep, "") for flag in setting.flags)
  return {"setting": setting.name, "label": setting.label, "flags": flags,
          "seed": experiment.train.seed, "epochs": state["epoch"],
          "best_epoch": state["best_epoch"], "train_seconds": state["train_seconds"],
          "machine": runs.format_machine(machine) if machine else "",
          "best_val_nll": state["best_val_nll"],
          "valid_nll": test_metrics(run_dir, split="valid")["nll"], "test_nll": test["nll"],
          "test_recon": test["recon"], "test_kl": test["kl"], "test_ppl": test["ppl"],
          # The RNNLM has no code: no MI and no active units.
          "test_mi": test.get("mi", ""), "test_active_units": test.get("active_units", ""),
          "history": json.dumps(history)}


def read_records(path):
  """The rows of a record CSV (numbers as floats, `history` parsed), or []."""
  path = pathlib.Path(path)
  if not path.is_file():
    return []
  rows = read_csv(path)
  for row in rows:
    if isinstance(row.get("history"), str):
      row["history"] = json.loads(row["history"])
  return rows


def append_record(path, row):
  """Adds (or replaces) a setting's row; the file is rewritten whole, atomically."""
  from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
  rows = [r for r in read_records(path) if r["setting"] != row["setting"]] + [row]
  columns = list(RECORD_COLUMNS)
  for r in rows:
    columns += [k for k in r if k not in columns]
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
  writer.writeheader()
  for r in rows:
    writer.writerow({k: json.dumps(v) if k == "history" and not isinstance(v, str) else v
                     for k, v in r.items()})
  pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
  runs.atomic_write(path, buffer.getvalue())


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
    except (TypeError, ValueError):
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


def finish_epoch_panels(figure, axes, titles, suptitle, path):
  """Titles per-epoch curve panels, adds the legend and grid, writes the figure."""
  for axis, title in zip(axes, titles):
    axis.set_title(title, fontsize=9)
    axis.set_xlabel("epoch")
    axis.grid(alpha=0.3)
  axes[0].legend(fontsize=7)
  figure.suptitle(suptitle, fontsize=10)
  save_figure(figure, path)


def save_figure(figure, path, dpi=110):
  """Lays out, writes and closes a matplotlib figure."""
  figure.tight_layout()
  figure.savefig(path, dpi=dpi)
  pyplot().close(figure)


def check_scale(scale):
  if scale not in SCALES:
    raise errors.InvalidValueError(f"`scale` must be one of {list(SCALES)}, got {scale!r}.")


def main_for(run, trains=False):
  """Runs `run(output_dir, scale[, runs_dir, num_threads, parallel, train])` as an
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
    report_only = flags.DEFINE_bool(
        "report_only", False, "Train nothing: build the tables and figures from the "
        "settings already recorded in <output_dir>/<experiment>_runs.csv (a grid still "
        "training is reported in part).")

  def main(argv):
    del argv
    cli.quiet_native_logs()  # Before TensorFlow is imported.
    if not trains:
      run(output_dir.value, scale.value)
      return
    from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
    runs.set_num_threads(num_threads.value)
    run(output_dir.value, scale.value, runs_dir=runs_dir.value,
        num_threads=num_threads.value, parallel=parallel.value, train=not report_only.value)

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


def setting(config_name, label, scale, *extra, budget=True):
  """A `Setting` of `configs/<config_name>.flags` plus `extra` flags.

  Its run directory is named after the flagfile and the extra flags (e.g.
  `ptb_inputless` or `ptb_inputless__kappa=20`; `ptb_converged__kappa=20`
  with `budget=False`, see `config_flags`), so experiments that need the
  same model share one run.

  A flagfile that anneals its KL weight with a sigmoid (the Gaussian
  baselines: its ramp is sized for the converged run) gets the ramp of
  `annealing_schedule(scale)` instead, over the first half of the scale's
  budget, unless `extra` sets `--kl_schedule` or `budget` is False at full
  scale. So every annealed baseline of the grid anneals the same way, and
  at small scale it anneals at all.
  """
  if ((budget or scale == "small")
      and not any(flag.startswith("--kl_schedule=") for flag in extra)
      and (flag_value(config_name, "kl_schedule") or "").startswith("sigmoid")):
    extra = (f"--kl_schedule={annealing_schedule(scale)}",) + extra
  suffix = "__".join(flag.lstrip("-").replace("/", "_").replace(":", "_").replace(",", "_")
                     for flag in extra)
  name = config_name + ("" if budget else "_converged")
  return Setting(name=name + ("__" + suffix if suffix else ""), label=label,
                 flags=config_flags(config_name, scale, *extra, budget=budget))


@functools.lru_cache(maxsize=None)
def epoch_budget(scale, small_epochs=None):
  """(epochs, training steps of one epoch) of a PTB run at `scale`.

  Cached: it reads PTB's training split, and every annealed setting asks.

  The full scale's come from `configs/budget.flags`, the small scale's from
  `configs/experiments_small.flags` (`small_epochs` overrides its epochs);
  the steps are counted on PTB's training split as the trainer batches it
  (at the full scale, in `FULL_SCALE_BUCKET_WIDTH`-wide buckets).
  """
  from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
  from tf_vmfvae import train_lib  # pylint: disable=g-import-not-at-top
  check_scale(scale)
  overrides = "experiments_small" if scale == "small" else "budget"
  cap = flag_value(overrides, "steps_per_epoch")
  epochs = int(small_epochs if scale == "small" and small_epochs
               else flag_value(overrides, "epochs"))
  experiment = config.ExperimentConfig(
      data=(config.DataConfig(bucket_width=FULL_SCALE_BUCKET_WIDTH) if scale == "full"
            else config.DataConfig()),
      train=config.TrainConfig(batch_size=int(flag_value(overrides, "batch_size")),
                               epochs=epochs, steps_per_epoch=int(cap) if cap else None))
  steps = train_lib.steps_per_epoch(experiment, runs.load_data(experiment, splits=["train"]))
  return epochs, steps


def annealing_schedule(scale, small_epochs=None):
  """The --kl_schedule of a sigmoid KL weight from ~0 to ~1 over the first
  half of the epoch budget at `scale` (the paper's Table 1: 20 of 40 epochs)."""
  epochs, steps = epoch_budget(scale, small_epochs)
  return sigmoid_schedule(epochs * steps // 2)


def sigmoid_schedule(span):
  """A sigmoid KL weight going from ~0 to ~1 over `span` steps (--kl_schedule).

  Example:
  >>> sigmoid_schedule(1000)
  'sigmoid:midpoint=500,steepness=0.01'
  """
  return f"sigmoid:midpoint={span // 2},steepness={10.0 / span:.6g}"


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
