r"""Can a true bound reach the paper's 98? The Standard kappa best on
validation, trained to convergence and scored by the importance-weighted bound.

Usage (after `kappa_sweep` has every Standard kappa recorded in the same
--output_dir):
  python -m tf_vmfvae.experiments.best_kappa_bound --output_dir=docs/figures --scale=small
  python -m tf_vmfvae.experiments.best_kappa_bound --output_dir=docs/figures/full \
      --scale=full --runs_dir=runs/full --parallel=2 --num_threads=1

Takes, from the Standard vMF rows of kappa_sweep_runs.csv, the kappa with
the lowest validation NLL (budget-trained; the test set plays no part in the
choice) and trains it with both recipes of Table 3: one draw
(configs/ptb.flags) and the paper's protocol (configs/ptb_paper_protocol.flags:
the decoder is fed the mean of 3 draws). At full scale the two train to
convergence, on their flagfiles' own schedule (Adam, halved on a plateau,
at most 40 epochs) rather than the budget; their runs are named
`ptb_converged__kappa=K` and `ptb_paper_protocol_converged__kappa=K`
(without `__kappa=K` when K is the flagfile's own 35: Table 3's models, so
a finished Table 3 run linked there is reused). Each is scored on the whole
test set by the importance-weighted bound (`IW_SAMPLES` draws a sentence)
and by the paper's estimator (`PAPER_DRAWS` draws, not a bound). Writes
best_kappa_bound.csv (a row per recipe, Table 3's kappa=35 bound and the
paper's 98 beside) and best_kappa_bound.png.
"""

import pathlib

from tf_vmfvae import errors
from tf_vmfvae.experiments import common
from tf_vmfvae.experiments import kappa_sweep

# scale -> importance samples per sentence of the bound.
IW_SAMPLES = {"small": 10, "full": 500}
PAPER_DRAWS = 3
# recipe -> flagfile, and Table 3's test bound (IW PPL, K=500) of its kappa=35
# model, trained to convergence (docs/RESULTS.md, Table 3).
RECIPES = {"one draw": "ptb", "paper protocol": "ptb_paper_protocol"}
TABLE3_IW_PPL = {"one draw": 104.8, "paper protocol": 100.9}
PAPER_PPL = 98.0  # The paper's Table 3, vMF Standard (its protocol).


class SweepNotFinishedError(errors.UserError, LookupError):
  """The Standard kappa sweep this experiment chooses from has missing rows."""


def choose_kappa(output_dir, scale):
  """(kappa, {kappa: validation NLL}) of the Standard sweep's best on validation.

  Raises:
    SweepNotFinishedError: a Standard kappa of the scale has no row in
      `<output_dir>/kappa_sweep_runs.csv`.
  """
  path = common.record_path(output_dir, "kappa_sweep")
  rows = {row["setting"]: row for row in common.read_records(path)}
  sweep = [(kappa, s) for name, latent, kappa, s in kappa_sweep.settings(scale)
           if name == "standard" and latent == "vmf"]
  missing = [kappa for kappa, s in sweep if s.name not in rows]
  if missing:
    raise SweepNotFinishedError(
        f"The Standard kappa sweep is not finished: kappa = "
        f"{', '.join(f'{k:g}' for k in missing)} have no row in {path}; run "
        f"`python -m tf_vmfvae.experiments.kappa_sweep --scale={scale}` first.")
  valid = {kappa: rows[s.name]["valid_nll"] for kappa, s in sweep}
  return min(valid, key=valid.get), valid


def settings(scale, kappa):
  """{recipe: `Setting`} of `kappa`, trained to convergence at full scale."""
  # Both flagfiles have ptb.flags' kappa (the protocol's includes it).
  flags = () if kappa == float(common.flag_value("ptb", "kappa")) else (f"--kappa={kappa:g}",)
  return {recipe: common.setting(config, f"{recipe}, kappa={kappa:g}", scale, *flags,
                                 budget=False)
          for recipe, config in RECIPES.items()}


def measure(scale, run_dir):
  """The test set's importance-weighted bound and the paper's estimate."""
  from tf_vmfvae import evaluate_lib  # pylint: disable=g-import-not-at-top
  metrics = evaluate_lib.evaluate(run_dir, split="test", num_importance_samples=IW_SAMPLES[scale],
                                  paper_estimator_samples=PAPER_DRAWS)
  return {"iw_samples": IW_SAMPLES[scale], "iw_nll": metrics["iw_nll"],
          "iw_ppl": metrics["iw_ppl"], "paper_nll": metrics["paper_nll"],
          "paper_ppl": metrics["paper_ppl"]}


def run(output_dir, scale="small", runs_dir=None, num_threads=0, parallel=1,
        train=True):
  """Chooses kappa, trains (or reuses) both recipes; writes the CSV and figure."""
  kappa, valid = choose_kappa(output_dir, scale)
  print(f"Standard kappa best on validation (budget sweep): {kappa:g} "
        f"({', '.join(f'{k:g}: {v:.2f}' for k, v in sorted(valid.items()))})", flush=True)
  models, records = common.train_for(
      lambda s: settings(s, kappa), output_dir, scale, runs_dir, num_threads, parallel,
      record="best_kappa_bound", train=train,
      measure=lambda unused_setting, run_dir: measure(scale, run_dir))
  rows = []
  for recipe, model in models.items():
    record = records[model.name]
    rows.append({"recipe": recipe, "kappa": kappa, "sweep_valid_nll": valid[kappa],
                 "epochs": record["epochs"], "best_epoch": record["best_epoch"],
                 "train_seconds": record["train_seconds"], "machine": record["machine"],
                 "best_val_nll": record["best_val_nll"], "test_nll": record["test_nll"],
                 "test_kl": record["test_kl"], "test_ppl": record["test_ppl"],
                 "iw_samples": record["iw_samples"], "iw_nll": record["iw_nll"],
                 "iw_ppl": record["iw_ppl"], "paper_estimate_ppl": record["paper_ppl"],
                 "table3_kappa35_iw_ppl": TABLE3_IW_PPL[recipe], "paper_ppl": PAPER_PPL})
  output_dir = pathlib.Path(output_dir)
  common.write_csv(output_dir / "best_kappa_bound.csv", rows)
  _plot(rows, output_dir / "best_kappa_bound.png", scale)
  print(common.format_rows(
      rows, ["recipe", "kappa", "epochs", "best_epoch", "test_ppl", "iw_ppl",
             "paper_estimate_ppl", "table3_kappa35_iw_ppl", "paper_ppl"],
      f"best_kappa_bound (PTB Standard, test; IW K={IW_SAMPLES[scale]}, scale={scale})"))
  return rows


def _plot(rows, path, scale):
  plt = common.pyplot()
  figure, axis = plt.subplots(figsize=(6.5, 3.6))
  width = 0.27
  for i, (column, label) in enumerate((("test_ppl", "ELBO (one draw)"),
                                       ("iw_ppl", "IW bound"),
                                       ("paper_estimate_ppl", "paper's estimator (not a bound)"))):
    x = [j + (i - 1) * width for j in range(len(rows))]
    bars = axis.bar(x, [r[column] for r in rows], width, label=label)
    axis.bar_label(bars, fmt="%.1f", fontsize=7)
  axis.scatter(range(len(rows)), [r["table3_kappa35_iw_ppl"] for r in rows], marker="_",
               s=600, color="black", zorder=3, label="Table 3, kappa=35: IW bound")
  axis.axhline(PAPER_PPL, color="tab:red", linestyle="--", linewidth=1,
               label=f"paper, vMF Standard: {PAPER_PPL:g}")
  axis.set_xticks(range(len(rows)), [f"{r['recipe']}, kappa={r['kappa']:g}" for r in rows])
  axis.set_ylabel("test perplexity")
  axis.set_title(f"Standard PTB, the kappa best on validation (scale={scale})", fontsize=9)
  axis.legend(fontsize=7, loc="lower right")
  common.save_figure(figure, path)


if __name__ == "__main__":
  common.main_for(run, trains=True)
