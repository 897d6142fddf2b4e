"""A run's validation perplexity against wall-clock time: CSV and PNG.

Usage:
  TF_VMFVAE_DATA_DIR=../shared/data python bench/time_to_quality.py \
      --model_dir runs/ptb_vmf --output docs/figures/ptb_time_to_quality

Reads the run's state.json (one point per completed epoch: the trainer's
own clock, cumulative over resumes) and writes <output>.csv and <output>.png:
validation NLL per sentence and perplexity exp(sum NLL / tokens incl.
<eos>) against elapsed minutes. Prints when the run first came within 1 %
of its best validation NLL.

  python bench/time_to_quality.py --model_dir runs/full/ptb \
      --output docs/figures/ptb_budget_curve \
      --reference "docs/figures/ptb_time_to_quality.csv=converged (plateau, batch 32)" \
      --target_nll 106.50

draws earlier curves (CSV files this script wrote) beside the run's, and
prints the run's best against `--target_nll` (a converged run's best).
`--x_axis=epoch` draws them against epochs instead, for runs whose clocks
are not comparable (runs that shared the machine with others).
"""

import argparse
import csv
import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top,wrong-import-position


def curve(model_dir, excluded=None):
  """Rows (epoch, elapsed_s, val_nll, val_ppl, train_tokens_per_second).

  `excluded`: {epoch: seconds} left out of that epoch's clock (time the
  process did not run).
  """
  excluded = excluded or {}
  experiment = runs.load_config(model_dir)
  state = runs.load_state(model_dir)
  if experiment is None or state is None:
    raise SystemExit(f"No run with a completed epoch in {model_dir}.")
  splits = runs.load_data(experiment, model_dir, splits=["valid"])
  sentences, tokens = splits.num_examples("valid"), splits.num_tokens("valid")
  rows, elapsed = [], 0.0
  for logs in state["history"]:
    elapsed += logs["seconds"] - excluded.get(logs["epoch"], 0.0)
    rows.append((logs["epoch"], elapsed, logs["val_nll"],
                 math.exp(logs["val_nll"] * sentences / tokens),
                 logs.get("train_tokens_per_second", float("nan"))))
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model_dir", required=True)
  parser.add_argument("--output", required=True, help="Path without extension.")
  parser.add_argument("--excluded", default="",
                      help="EPOCH=SECONDS,...: time the process did not run during an "
                      "epoch, taken off the clock from that epoch on.")
  parser.add_argument("--reference", action="append", default=[],
                      help="PATH.csv=LABEL: a curve this script wrote earlier, drawn beside; the label "
                      "follows the first '.csv=', so both may hold '=' "
                      "(repeatable).")
  parser.add_argument("--label", default=None,
                      help="The run's legend entry (default: its directory's name).")
  parser.add_argument("--target_nll", type=float, default=None,
                      help="A converged run's best validation NLL: prints how far this "
                      "run's best is from it.")
  parser.add_argument("--x_axis", choices=["minutes", "epoch"], default="minutes",
                      help="What the curves are drawn against.")
  args = parser.parse_args()
  excluded = {int(e): float(s) for e, s in
              (item.split("=") for item in args.excluded.split(",") if item)}
  rows = curve(args.model_dir, excluded)
  output = pathlib.Path(args.output)
  output.parent.mkdir(parents=True, exist_ok=True)
  with open(output.with_suffix(".csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["epoch", "elapsed_seconds", "val_nll", "val_ppl",
                     "train_tokens_per_second"])
    writer.writerows(rows)

  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  def x(epoch, seconds):
    return float(epoch) if args.x_axis == "epoch" else float(seconds) / 60

  figure, axis = pyplot.subplots(figsize=(6, 3.5))
  axis.plot([x(r[0], r[1]) for r in rows], [r[3] for r in rows], marker="o", markersize=3,
            label=args.label or pathlib.Path(args.model_dir).name)
  for reference in args.reference:
    path, _, label = reference.partition(".csv=")
    path = path if path.endswith(".csv") else path + ".csv"
    with open(path, newline="") as f:
      points = list(csv.DictReader(f))
    axis.plot([x(p["epoch"], p["elapsed_seconds"]) for p in points],
              [float(p["val_ppl"]) for p in points], marker=".", markersize=3,
              label=label or pathlib.Path(path).stem, alpha=0.7)
  if args.reference:
    axis.legend(fontsize=8)
    axis.set_yscale("log")
  axis.set_xlabel("epoch" if args.x_axis == "epoch" else "wall-clock minutes (trainer's clock)")
  axis.set_ylabel("validation perplexity (ELBO)")
  axis.set_title(f"{pathlib.Path(args.model_dir).name}: validation PPL vs "
                 f"{'epoch' if args.x_axis == 'epoch' else 'time'}", fontsize=10)
  axis.grid(alpha=0.3)
  figure.tight_layout()
  figure.savefig(output.with_suffix(".png"), dpi=120)

  best = min(r[2] for r in rows)
  within = next(r for r in rows if r[2] <= best * 1.01)
  print(f"{len(rows)} epochs in {rows[-1][1] / 60:.1f} min; best validation NLL {best:.2f} "
        f"(PPL {min(r[3] for r in rows):.1f}); within 1 % of it at epoch {within[0]}, "
        f"{within[1] / 60:.1f} min. Wrote {output.with_suffix('.csv')} and .png")
  if args.target_nll:
    print(f"Best {best:.2f} against the target {args.target_nll:.2f}: "
          f"{100 * (best / args.target_nll - 1):+.2f} %.")


if __name__ == "__main__":
  main()
