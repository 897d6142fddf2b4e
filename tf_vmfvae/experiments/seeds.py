r"""How often a run stalls: the same model trained with several seeds.

Usage:
  python -m tf_vmfvae.experiments.seeds --output_dir=docs/figures --scale=small
  python -m tf_vmfvae.experiments.seeds --output_dir=docs/figures/full --scale=full \
      --runs_dir=runs/full --parallel=2 --num_threads=1

The Inputless vMF NVRNN (configs/ptb_inputless.flags, kappa=80) and the
Inputless Gaussian NVRNN with sigmoid KL annealing over the first half of
the budget (configs/ptb_gaussian_inputless.flags), each trained with every
seed of the scale under the same budget. Seeds are reported, never picked:
a run *stalls* when its validation mutual information I(x; z) after the
last epoch is below `STALL_MI` nats (a stalled Inputless vMF run seen
earlier: 0.54 nats, validation NLL near 158; healthy runs: 3.9 nats of at
most ln 50 = 3.91 for the batch estimate). The paper's footnote 3 says that
collapse frequency varies with hyperparameters. Each finished run's row is
kept in seeds_runs.csv (`common.train_for`'s records). Writes seeds.csv (a
row per run), seeds_summary.csv (per model: seeds tried, stalled, spread of
the others) and seeds.png (validation NLL and MI per epoch, one line per
seed).
"""

import pathlib
import statistics

from tf_vmfvae.experiments import common

SEEDS = {"small": (0, 1), "full": (0, 1, 2)}
STALL_MI = 1.0
# model -> flagfile; the Gaussian's annealing fits the scale (`common.setting`).
MODELS = {"vmf": "ptb_inputless", "gaussian_annealed": "ptb_gaussian_inputless"}


def settings(scale):
  """[(model, seed, `Setting`)]; a seed equal to the flagfile's own reuses its run."""
  result = []
  for model, config in MODELS.items():
    own = int(common.flag_value(config, "seed") or 0)
    for seed in SEEDS[scale]:
      flags = () if seed == own else (f"--seed={seed}",)
      result.append((model, seed, common.setting(config, f"{model} seed {seed}", scale,
                                                 *flags)))
  return result


def run(output_dir, scale="small", runs_dir=None, num_threads=0, parallel=1,
        train=True):
  """Trains (or reuses) every (model, seed); writes the CSVs and the figure."""
  grid, records = common.train_for(settings, output_dir, scale, runs_dir, num_threads,
                                   parallel, record="seeds", train=train)
  rows = []
  for model, seed, setting in grid:
    record = records[setting.name]
    final_mi = record["history"][-1].get("val_mi", float("nan"))
    rows.append({"model": model, "seed": seed, "epochs": record["epochs"],
                 "best_val_nll": record["best_val_nll"], "final_val_mi": final_mi,
                 "stalled": final_mi < STALL_MI, "test_nll": record["test_nll"],
                 "test_kl": record["test_kl"], "test_ppl": record["test_ppl"],
                 "test_mi": record["test_mi"],
                 "test_active_units": record["test_active_units"]})
  summary = [summarize(model, [r for r in rows if r["model"] == model]) for model in MODELS]
  output_dir = pathlib.Path(output_dir)
  common.write_csv(output_dir / "seeds.csv", rows)
  common.write_csv(output_dir / "seeds_summary.csv", summary)
  _plot(grid, records, output_dir / "seeds.png", scale)
  print(common.format_rows(
      rows, ["model", "seed", "epochs", "best_val_nll", "final_val_mi", "stalled", "test_nll",
             "test_kl", "test_ppl", "test_mi", "test_active_units"],
      f"seeds (PTB, Inputless, scale={scale}; stalled: final validation MI < {STALL_MI:g})"))
  print(common.format_rows(
      summary, list(summary[0]), "per model: the runs that did not stall"))
  return rows


def summarize(model, rows):
  """Seeds tried, how many stalled, and the spread of the others' NLLs.

  Example:
  >>> summarize("vmf", [{"stalled": False, "best_val_nll": 131.0, "test_nll": 130.0},
  ...                   {"stalled": True, "best_val_nll": 158.0, "test_nll": 157.0},
  ...                   {"stalled": False, "best_val_nll": 133.0, "test_nll": 131.0}])
  {'model': 'vmf', 'seeds': 3, 'stalled': 1, 'best_val_nll_mean': 132.0,
   'best_val_nll_range': 2.0, 'test_nll_mean': 130.5, 'test_nll_range': 1.0}
  """
  healthy = [r for r in rows if not r["stalled"]]
  summary = {"model": model, "seeds": len(rows), "stalled": len(rows) - len(healthy)}
  for key in ("best_val_nll", "test_nll"):
    values = [r[key] for r in healthy]
    summary[f"{key}_mean"] = statistics.fmean(values) if values else float("nan")
    summary[f"{key}_range"] = max(values) - min(values) if values else float("nan")
  return summary


def _plot(grid, records, path, scale):
  plt = common.pyplot()
  figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  colors = {"vmf": "tab:blue", "gaussian_annealed": "tab:orange"}
  styles = ("-", "--", ":", "-.")
  for model, seed, setting in grid:
    history = records[setting.name]["history"]
    epochs = [h["epoch"] for h in history]
    style = dict(color=colors[model], linestyle=styles[seed % len(styles)], marker="o",
                 markersize=3, label=f"{model} seed {seed}")
    axes[0].plot(epochs, [h["val_nll"] for h in history], **style)
    axes[1].plot(epochs, [h.get("val_mi", float("nan")) for h in history], **style)
  axes[1].axhline(STALL_MI, color="grey", linewidth=0.8, linestyle=":")
  common.finish_epoch_panels(
      figure, axes, ("validation NLL (ELBO) [nats / sentence]",
                     "validation mutual information I(x;z) [nats]"),
      f"Inputless PTB, one line per seed (scale={scale})", path)


if __name__ == "__main__":
  common.main_for(run, trains=True)
