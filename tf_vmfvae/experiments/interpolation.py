r"""Beyond the paper: sentences decoded along the path between two test
sentences' codes, vMF (great circle) beside Gaussian (straight line).

Usage:
  python -m tf_vmfvae.experiments.interpolation --output_dir=docs/figures --scale=small
  python -m tf_vmfvae.experiments.interpolation --output_dir=docs/figures --scale=full \
      --runs_dir=runs

The vMF NVRNN (configs/ptb.flags) and the Gaussian one (ptb_gaussian) encode
two test sentences of 8 to 20 words to their posterior modes; points along
the path between them (slerp on the sphere, lerp for the Gaussian) are
decoded greedily (`tf_vmfvae.generate_lib.Generator.interpolate`) and
printed side by side. Writes interpolation.csv and interpolation.png.
"""

import json
import pathlib
import textwrap

import numpy as np

from tf_vmfvae.experiments import common

# scale -> (sentence pairs, points on each path incl. the ends)
SIZES = {"small": (1, 5), "full": (3, 7)}


def settings(scale):
  return {"vmf": common.setting("ptb", "vmf", scale),
          "gaussian": common.setting("ptb_gaussian", "gaussian", scale)}


def pick_pairs(sentences, num_pairs, seed=0):
  """`num_pairs` pairs of distinct sentences of 8 to 20 words, drawn with `seed`."""
  candidates = [s for s in sentences if 8 <= len(s.split()) <= 20]
  rng = np.random.default_rng(seed)
  chosen = rng.choice(len(candidates), 2 * num_pairs, replace=False)
  return [(candidates[chosen[2 * i]], candidates[chosen[2 * i + 1]]) for i in range(num_pairs)]


def measure(scale, run_dir):
  """The model's interpolations between the scale's test pairs, as record columns.

  "pairs": JSON [[sentence a, sentence b], ...] (the same for every model:
  they depend on the test set only); "interpolations": JSON, one list of
  `steps` decoded sentences per pair.
  """
  from tf_vmfvae import generate_lib  # pylint: disable=g-import-not-at-top
  num_pairs, steps = SIZES[scale]
  _, splits = common.load_model(run_dir)
  test = [" ".join(splits.vocabulary.decode(ids)) for ids in splits.ids["test"]]
  pairs = pick_pairs(test, num_pairs)
  generator = generate_lib.Generator(run_dir, max_length=25)
  return {"pairs": json.dumps(pairs),
          "interpolations": json.dumps([generator.interpolate(a, b, steps=steps)
                                        for a, b in pairs])}


def run(output_dir, scale="small", runs_dir=None, num_threads=0, parallel=1,
        train=True):
  """Trains (or reuses) both models, interpolates; writes the CSV and figure."""
  models, records = common.train_for(
      settings, output_dir, scale, runs_dir, num_threads, parallel, record="interpolation",
      train=train, measure=lambda unused_setting, run_dir: measure(scale, run_dir))
  steps = SIZES[scale][1]
  # The same pairs for every model; a model not recorded yet (--report_only)
  # leaves its column empty.
  pairs = json.loads(records[next(iter(models.values())).name]["pairs"])
  paths = {latent: json.loads(records[model.name]["interpolations"])
           for latent, model in models.items()}
  for latent in settings(scale):
    paths.setdefault(latent, [[""] * steps for _ in pairs])
  rows = []
  for pair, (a, b) in enumerate(pairs):
    for step in range(steps):
      rows.append({"pair": pair, "step": step, "fraction": step / (steps - 1),
                   "sentence_a": a, "sentence_b": b, "vmf": paths["vmf"][pair][step],
                   "gaussian": paths["gaussian"][pair][step]})
  output_dir = pathlib.Path(output_dir)
  common.write_csv(output_dir / "interpolation.csv", rows)
  _plot(rows, output_dir / "interpolation.png", scale)
  print(format_table(rows, scale))
  return rows


def format_table(rows, scale):
  lines = [f"interpolation (PTB test, greedy decoding, scale={scale})"]
  for row in rows:
    if row["step"] == 0:
      lines += ["", f"A: {row['sentence_a']}", f"B: {row['sentence_b']}",
                f"{'t':>4}  {'vMF (great circle)':<60}  Gaussian (straight line)"]
    lines.append(f"{row['fraction']:>4.2f}  {row['vmf']:<60}  {row['gaussian']}")
  return "\n".join(lines)


def _plot(rows, path, scale):
  plt = common.pyplot()
  figure, axis = plt.subplots(figsize=(13, 0.32 * len(rows) + 1.5))
  axis.axis("off")
  cells = [[f"{r['pair']}", f"{r['fraction']:.2f}", textwrap.shorten(r["vmf"], 70),
            textwrap.shorten(r["gaussian"], 70)] for r in rows]
  table = axis.table(cellText=cells, colLabels=["pair", "t", "vMF (great circle)",
                                                "Gaussian (straight line)"],
                     loc="center", cellLoc="left", colWidths=[0.04, 0.05, 0.45, 0.45])
  table.auto_set_font_size(False)
  table.set_fontsize(7)
  axis.set_title(f"Interpolation between test sentences (scale={scale})", fontsize=9)
  common.save_figure(figure, path)


if __name__ == "__main__":
  common.main_for(run, trains=True)
