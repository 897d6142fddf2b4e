r"""Figures 4 and 6 of the paper: PTB perplexity and the KL / reconstruction
split against the concentration kappa.

Usage:
  python -m tf_vmfvae.experiments.kappa_sweep --output_dir=docs/figures --scale=small
  python -m tf_vmfvae.experiments.kappa_sweep --output_dir=docs/figures --scale=full \
      --runs_dir=runs --parallel=2 --num_threads=1

vMF NVRNNs with latent 50 (scale=small: 8) in four settings, Standard
(configs/ptb.flags), Inputless (ptb_inputless), Standard-BoW (ptb_bow) and
Inputless-BoW (ptb_inputless + --bow_conditioned), each at every kappa of the
scale, and Gaussian Inputless models with a constant KL weight of 0.2 and 0.5
(Fig. 4's G-0.2, G-0.5). Every (setting, kappa) is a run directory: the sweep
resumes where it stopped, and a kappa equal to the flagfile's own reuses that
flagfile's run. Each finished run's row is kept in kappa_sweep_runs.csv
(`common.train_for`'s records): a recorded setting is not trained again.
Scored on the test set with the ELBO (one draw); each setting's best kappa
is chosen on the validation set ("best_on_valid"), never on test. Writes
kappa_sweep.csv, kappa_sweep.png (Fig. 4: Inputless, stacked reconstruction
and KL, PPL above each bar) and kappa_sweep_heatmap.png (Fig. 6: test PPL
over setting x kappa, shaded relative to each setting's best, the kappa
chosen on validation framed).
"""

import math
import pathlib

from tf_vmfvae.experiments import common

# In training order (the full grid takes many hours): the paper's best
# Inputless kappa and the two ends first; the tables sort by kappa.
KAPPAS = {"small": (5.0, 50.0), "full": (80.0, 20.0, 160.0, 35.0, 10.0, 50.0, 120.0)}
GAUSSIAN_WEIGHTS = (0.2, 0.5)
# setting -> (flagfile, extra flags); ordered hardest to easiest as in Fig. 6.
SETTINGS = {"inputless": ("ptb_inputless", ()),
            "inputless_bow": ("ptb_inputless", ("--bow_conditioned",)),
            "standard": ("ptb", ()),
            "standard_bow": ("ptb_bow", ())}
# The settings' training order: Fig. 4 first (Inputless and its Gaussian
# baselines), then Standard (its best kappa is the one trained to a bound),
# then the BoW settings. The tables keep SETTINGS' order.
TRAINING_ORDER = ("inputless", "gaussian", "standard", "inputless_bow", "standard_bow")
# Fig. 4 (Inputless, latent 50): perplexity of G-0.2, G-0.5 and the best V-kappa.
PAPER_BEST = {"inputless": ("V-80", 262.0)}


def settings(scale):
  """[(setting, latent, kappa or KL weight, `Setting`)] in `TRAINING_ORDER`."""
  result = []
  for name, (config, extra) in SETTINGS.items():
    own = float(common.flag_value(config, "kappa"))
    for kappa in KAPPAS[scale]:
      flags = extra if kappa == own else extra + (f"--kappa={kappa:g}",)
      result.append((name, "vmf", kappa,
                     common.setting(config, f"{name} V-{kappa:g}", scale, *flags)))
  for weight in GAUSSIAN_WEIGHTS:
    result.append(("inputless", "gaussian", weight, common.setting(
        "ptb_gaussian_inputless", f"inputless G-{weight:g}", scale,
        f"--kl_schedule={weight:g}")))
  return sorted(result, key=lambda item: TRAINING_ORDER.index(
      item[1] if item[1] == "gaussian" else item[0]))


def run(output_dir, scale="small", runs_dir=None, num_threads=0, parallel=1,
        train=True):
  """Trains (or reuses) every (setting, kappa); writes the CSV and figures."""
  grid, records = common.train_for(settings, output_dir, scale, runs_dir, num_threads,
                                   parallel, record="kappa_sweep", train=train)
  rows = []
  for name, latent, value, model in grid:
    record = records[model.name]
    rows.append({"setting": name, "latent": latent,
                 "kappa": value if latent == "vmf" else math.nan,
                 "kl_weight": value if latent == "gaussian" else math.nan,
                 "val_nll": record["valid_nll"], "nll": record["test_nll"],
                 "recon": record["test_recon"], "kl": record["test_kl"],
                 "ppl": record["test_ppl"], "mi": record["test_mi"],
                 "active_units": record["test_active_units"], "epochs": record["epochs"],
                 "best_on_valid": False})
  names = list(SETTINGS)
  rows.sort(key=lambda r: (names.index(r["setting"]), r["latent"] != "vmf",
                           r["kappa"] if r["latent"] == "vmf" else r["kl_weight"]))
  for name in SETTINGS:
    vmf = [r for r in rows if r["setting"] == name and r["latent"] == "vmf"]
    if vmf:
      min(vmf, key=lambda r: r["val_nll"])["best_on_valid"] = True
  output_dir = pathlib.Path(output_dir)
  common.write_csv(output_dir / "kappa_sweep.csv", rows)
  _plot_bars([r for r in rows if r["setting"] == "inputless"],
             output_dir / "kappa_sweep.png", scale)
  _plot_heatmap([r for r in rows if r["latent"] == "vmf"],
                output_dir / "kappa_sweep_heatmap.png", scale)
  print(common.format_rows(
      rows, ["setting", "latent", "kappa", "kl_weight", "val_nll", "nll", "recon", "kl", "ppl",
             "mi", "active_units", "epochs", "best_on_valid"],
      f"kappa_sweep (Figs. 4 and 6, PTB test ELBO, scale={scale}; paper, Inputless: "
      f"best V-80, PPL 262)"))
  return rows


def _bar_label(row):
  return (f"G-{row['kl_weight']:g}" if row["latent"] == "gaussian"
          else f"V-{row['kappa']:g}")


def _plot_bars(rows, path, scale):
  plt = common.pyplot()
  figure, axis = plt.subplots(figsize=(1.2 * len(rows) + 2, 4))
  x = range(len(rows))
  axis.bar(x, [r["recon"] for r in rows], label="reconstruction", color="tab:blue")
  axis.bar(x, [r["kl"] for r in rows], bottom=[r["recon"] for r in rows], label="KL",
           color="tab:green")
  for i, r in enumerate(rows):
    axis.text(i, r["nll"], f"{r['ppl']:.0f}", ha="center", va="bottom", fontsize=8)
  axis.set_xticks(list(x), [_bar_label(r) for r in rows])
  axis.set_ylabel("test NLL (ELBO) [nats / sentence]")
  axis.set_title(f"Inputless PTB: reconstruction + KL; PPL above (scale={scale})",
                 fontsize=9)
  axis.legend(fontsize=8)
  common.save_figure(figure, path)


def _plot_heatmap(rows, path, scale):
  import numpy as np  # pylint: disable=g-import-not-at-top
  plt = common.pyplot()
  names = [name for name in SETTINGS if any(r["setting"] == name for r in rows)]
  kappas = sorted({r["kappa"] for r in rows})
  ppl = np.full((len(names), len(kappas)), np.nan)
  for r in rows:
    ppl[names.index(r["setting"]), kappas.index(r["kappa"])] = r["ppl"]
  # Each setting's own scale (as Fig. 6): 0 at its best PPL, 1 at its worst
  # (log PPL), so a setting with a wide range does not wash out the others.
  low = np.nanmin(np.log(ppl), axis=1, keepdims=True)
  span = np.nanmax(np.log(ppl), axis=1, keepdims=True) - low
  shade = (np.log(ppl) - low) / np.where(span > 0, span, 1.0)
  figure, axis = plt.subplots(figsize=(1.0 * len(kappas) + 3, 3.2))
  axis.imshow(shade, cmap="Blues_r", aspect="auto", vmin=0.0, vmax=1.0)
  for i in range(len(names)):
    for j in range(len(kappas)):
      if not np.isnan(ppl[i, j]):  # A (setting, kappa) not trained yet stays blank.
        axis.text(j, i, f"{ppl[i, j]:.0f}", ha="center", va="center", fontsize=8,
                  color="white" if shade[i, j] < 0.5 else "black")
  for r in rows:
    if r["best_on_valid"]:
      j, i = kappas.index(r["kappa"]), names.index(r["setting"])
      axis.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2, ec="tab:red"))
  axis.set_xticks(range(len(kappas)), [f"{k:g}" for k in kappas])
  axis.set_yticks(range(len(names)), names)
  axis.set_xlabel("kappa")
  axis.set_title(f"test PPL; darker = closer to the setting's best; framed: best kappa on "
                 f"validation (scale={scale})",
                 fontsize=9)
  common.save_figure(figure, path)


if __name__ == "__main__":
  common.main_for(run, trains=True)
