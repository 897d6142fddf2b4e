r"""Table 1 of the paper: KL collapse of Gaussian NVRNNs, and the vMF beside them.

Usage:
  python -m tf_vmfvae.experiments.collapse --output_dir=docs/figures --scale=small
  python -m tf_vmfvae.experiments.collapse --output_dir=docs/figures --scale=full \
      --runs_dir=runs --parallel=2 --num_threads=1

Inputless Gaussian NVRNNs on PTB (configs/ptb_gaussian_inputless.flags)
with a 1-layer and a 3-layer LSTM encoder, each with a constant KL weight of
1 and with sigmoid annealing from 0 to 1 over the first half of the epoch
budget (the paper: 20 of its epochs), and the Inputless vMF model
(configs/ptb_inputless.flags, kappa=80). The paper's Table 1 is the Inputless
setting: its vMF row (NLL 117, KL 18.6) is Table 3's Inputless vMF. The
annealed 1-layer Gaussian and the vMF are the seeds experiment's seed-0 and
seed-1 runs (one run each, shared by name). The table gives the
development-set KL and NLL at each run's best epoch, the paper's beside them;
beyond the paper, the curves give the validation KL, NLL, mutual information
I(x; z) and active units of every model after each epoch (the trainer logs
MI and AU on validation, also to TensorBoard). A KL above zero is not use of
the code: the MI says whether z carries information about x. Each finished
run's row (with its per-epoch history) is kept in collapse_runs.csv
(`common.train_for`'s records). Writes collapse.csv (per epoch),
collapse_table.csv and collapse.png.
"""

import math
import pathlib

from tf_vmfvae.experiments import common

# Table 1 of the paper (development set).
PAPER = {"gaussian_3layer": (0.00, 135), "gaussian_1layer": (3.37, 129),
         "gaussian_3layer_annealed": (1.05, 132), "gaussian_1layer_annealed": (6.52, 125),
         "vmf": (18.6, 117)}
# Epochs of the small scale (its flagfile's 3 are too few for a curve); the
# full scale runs the budget's.
SMALL_EPOCHS = 4
def settings(scale):
  common.check_scale(scale)
  epoch_flags = () if scale == "full" else (f"--epochs={SMALL_EPOCHS}",)
  result = {}
  for layers in (1, 3):
    for annealed in (False, True):
      key = f"gaussian_{layers}layer" + ("_annealed" if annealed else "")
      schedule = common.annealing_schedule(scale, SMALL_EPOCHS) if annealed else "1"
      # One layer is the flagfile's default: no flag, so that the annealed
      # 1-layer model shares its run (and name) with the seeds experiment.
      layer_flags = (f"--encoder_layers={layers}",) if layers != 1 else ()
      result[key] = common.setting(
          "ptb_gaussian_inputless", key.replace("_", " "), scale, *layer_flags,
          f"--kl_schedule={schedule}", *epoch_flags)
  result["vmf"] = common.setting("ptb_inputless", "vmf", scale, *epoch_flags)
  return result


def run(output_dir, scale="small", runs_dir=None, num_threads=0, parallel=1,
        train=True):
  """Trains (or reuses) the five models; writes the CSVs and the figure."""
  models, records = common.train_for(settings, output_dir, scale, runs_dir,
                                    num_threads, parallel, record="collapse",
                                    train=train)
  curves, table = [], []
  for key, model in models.items():
    history = records[model.name]["history"]
    for logs in history:
      curves.append({"model": key, "epoch": int(logs["epoch"]),
                     "val_kl": logs.get("val_kl", 0.0), "val_nll": logs["val_nll"],
                     "val_mi": logs.get("val_mi", math.nan),
                     "val_active_units": logs.get("val_active_units", math.nan)})
    best = min(history, key=lambda logs: logs["val_nll"])
    table.append({"model": key, "epochs": len(history), "best_epoch": int(best["epoch"]),
                  "dev_kl": best.get("val_kl", 0.0), "dev_nll": best["val_nll"],
                  "dev_mi": best.get("val_mi", math.nan),
                  "dev_active_units": best.get("val_active_units", math.nan),
                  "paper_kl": PAPER[key][0], "paper_nll": float(PAPER[key][1])})
  output_dir = pathlib.Path(output_dir)
  common.write_csv(output_dir / "collapse.csv", curves)
  common.write_csv(output_dir / "collapse_table.csv", table)
  _plot(curves, output_dir / "collapse.png", scale)
  print(common.format_rows(
      table, ["model", "epochs", "best_epoch", "dev_kl", "dev_nll", "dev_mi",
              "dev_active_units", "paper_kl", "paper_nll"],
      f"collapse (Table 1, PTB dev, scale={scale}; paper numbers are full scale)"))
  return table


def _plot(curves, path, scale):
  plt = common.pyplot()
  figure, axes = plt.subplots(1, 4, figsize=(16, 3.8))
  for key in PAPER:
    points = [c for c in curves if c["model"] == key]
    epochs = [c["epoch"] for c in points]
    for axis, column in zip(axes, ("val_kl", "val_nll", "val_mi", "val_active_units")):
      axis.plot(epochs, [c[column] for c in points], "o-", markersize=3, label=key)
  titles = [f"validation {t}" for t in ("KL [nats]", "NLL (ELBO) [nats / sentence]",
                                         "mutual information I(x;z) [nats]", "active units")]
  common.finish_epoch_panels(figure, axes, titles,
                             f"KL collapse on PTB, Inputless (scale={scale})", path)


if __name__ == "__main__":
  common.main_for(run, trains=True)
