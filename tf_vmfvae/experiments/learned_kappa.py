r"""Section 7 of the paper: a per-example kappa learned by the encoder, against
a fixed one.

Usage:
  python -m tf_vmfvae.experiments.learned_kappa --output_dir=docs/figures --scale=small
  python -m tf_vmfvae.experiments.learned_kappa --output_dir=docs/figures --scale=full \
      --runs_dir=runs --parallel=2 --num_threads=1

vMF NVRNNs on PTB, Standard (configs/ptb.flags) and Inputless
(ptb_inputless), each with its fixed kappa and with --latent=vmf_learned
(kappa = min + softplus(encoder output), clipped to [--kappa_min,
--kappa_max] = [1, 500] by default). The trainer logs the validation
kappa's mean and 10th / 90th percentiles after every epoch; the figure
shows where kappa drifts (the paper: toward the smallest values, where the
KL, and the use of the code, shrink), and the table compares the test ELBO,
KL and mutual information with the fixed-kappa models. Writes
learned_kappa.csv (per epoch), learned_kappa_table.csv and learned_kappa.png.
"""

import math
import pathlib

from tf_vmfvae.experiments import common

_CONFIGS = {"standard": "ptb", "inputless": "ptb_inputless"}


def settings(scale):
  """{(decoder mode, "learned" | "fixed"): `Setting`}."""
  result = {}
  for mode, config in _CONFIGS.items():
    result[(mode, "fixed")] = common.setting(
        config, f"{mode} fixed kappa={float(common.flag_value(config, 'kappa')):g}", scale)
    result[(mode, "learned")] = common.setting(config, f"{mode} learned kappa", scale,
                                               "--latent=vmf_learned")
  return result


def run(output_dir, scale="small", runs_dir=None, num_threads=0, parallel=1,
        train=True):
  """Trains (or reuses) the models; writes the CSVs and the figure."""
  models, records = common.train_for(settings, output_dir, scale, runs_dir,
                                    num_threads, parallel, record="learned_kappa",
                                    train=train)
  curves, table = [], []
  for (mode, kind), model in models.items():
    record = records[model.name]
    fixed = float(common.flag_value(_CONFIGS[mode], "kappa"))
    for logs in record["history"]:
      curves.append({"decoder": mode, "kappa": kind, "epoch": int(logs["epoch"]),
                     "val_nll": logs["val_nll"], "val_kl": logs["val_kl"],
                     "val_mi": logs.get("val_mi", math.nan),
                     "kappa_mean": logs.get("val_kappa_mean", fixed),
                     "kappa_p10": logs.get("val_kappa_p10", fixed),
                     "kappa_p90": logs.get("val_kappa_p90", fixed)})
    table.append({"decoder": mode, "kappa": kind, "final_kappa_mean": curves[-1]["kappa_mean"],
                  "nll": record["test_nll"], "kl": record["test_kl"], "ppl": record["test_ppl"],
                  "mi": record["test_mi"], "active_units": record["test_active_units"],
                  "seed": record["seed"], "epochs": record["epochs"]})
  output_dir = pathlib.Path(output_dir)
  common.write_csv(output_dir / "learned_kappa.csv", curves)
  common.write_csv(output_dir / "learned_kappa_table.csv", table)
  _plot(curves, output_dir / "learned_kappa.png", scale)
  print(common.format_rows(
      table, ["decoder", "kappa", "final_kappa_mean", "nll", "kl", "ppl", "mi", "active_units"],
      f"learned_kappa (Section 7, PTB test, scale={scale})"))
  return table


def _plot(curves, path, scale):
  plt = common.pyplot()
  figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
  for mode, color in (("standard", "tab:blue"), ("inputless", "tab:red")):
    for kind, style in (("learned", "o-"), ("fixed", "--")):
      points = [c for c in curves if c["decoder"] == mode and c["kappa"] == kind]
      epochs = [c["epoch"] for c in points]
      axes[0].plot(epochs, [c["kappa_mean"] for c in points], style, color=color,
                   markersize=3, label=f"{mode}, {kind}")
      if kind == "learned":
        axes[0].fill_between(epochs, [c["kappa_p10"] for c in points],
                             [c["kappa_p90"] for c in points], color=color, alpha=0.2)
      axes[1].plot(epochs, [c["val_nll"] for c in points], style, color=color, markersize=3,
                   label=f"{mode}, {kind}")
  axes[0].set_yscale("log")
  axes[0].set_title(f"validation kappa (learned: mean, 10-90 %) (scale={scale})", fontsize=9)
  axes[1].set_title("validation NLL (ELBO) [nats / sentence]", fontsize=9)
  for axis in axes:
    axis.set_xlabel("epoch")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
  common.save_figure(figure, path)


if __name__ == "__main__":
  common.main_for(run, trains=True)
