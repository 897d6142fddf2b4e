r"""Figure 5 of the paper: how much the code of a sentence moves when adjacent
words are swapped.

Usage:
  python -m tf_vmfvae.experiments.word_swap --output_dir=docs/figures --scale=small
  python -m tf_vmfvae.experiments.word_swap --output_dir=docs/figures --scale=full \
      --runs_dir=runs --parallel=2 --num_threads=1

Inputless NVRNNs, Gaussian (configs/ptb_gaussian_inputless.flags) and vMF
(ptb_inputless), each also as NVRNN-BoW. Every test sentence is encoded
(posterior mode) as it is and after swapping adjacent words: left to right,
each pair (i, i+1) is swapped with probability p and a swapped word is not
swapped again. The figure gives the mean cosine between the two codes
against p, with a band of +- 2 standard errors; a code that knows word order
falls faster. Writes word_swap.csv and word_swap.png.
"""

import pathlib

import numpy as np

from tf_vmfvae.experiments import common

_CONFIGS = {("nvrnn", "gaussian"): ("ptb_gaussian_inputless", ()),
            ("nvrnn", "vmf"): ("ptb_inputless", ()),
            ("nvrnn_bow", "gaussian"): ("ptb_gaussian_inputless", ("--bow_conditioned",)),
            ("nvrnn_bow", "vmf"): ("ptb_inputless", ("--bow_conditioned",))}
# scale -> (swap probabilities, test sentences)
GRID = {"small": (np.linspace(0.0, 1.0, 5), 500), "full": (np.linspace(0.0, 1.0, 11), None)}


def settings(scale):
  return {key: common.setting(config, f"inputless {key[0]} {key[1]}", scale, *extra)
          for key, (config, extra) in _CONFIGS.items()}


def swap_adjacent(sentence, probability, rng):
  """A copy of `sentence` with adjacent pairs swapped with `probability`.

  Example:
  >>> swap_adjacent(np.array([1, 2, 3, 4, 5]), 1.0, np.random.default_rng(0)).tolist()
  [2, 1, 4, 3, 5]
  """
  swapped = np.array(sentence, copy=True)
  i = 0
  while i < len(swapped) - 1:
    if rng.random() < probability:
      swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
      i += 2
    else:
      i += 1
  return swapped


def cosines(a, b):
  """Row-wise cosine of two [n, d] arrays."""
  return np.sum(a * b, axis=1) / np.maximum(
      np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def measure(scale, run_dir):
  """Mean cosine (and its standard error) of each code to its code after swaps.

  Returns the experiment's own columns of a record row:
  "swap_cosine_<p>", "swap_se_<p>" for each swap probability p of the
  scale's grid, and "swap_sentences".
  """
  probabilities, num_sentences = GRID[scale]
  model, splits = common.load_model(run_dir)
  sentences = splits.ids["test"][:num_sentences]
  original = common.encode_modes(model, sentences)
  row = {"swap_sentences": len(sentences)}
  for probability in probabilities:
    rng = np.random.default_rng(0)
    swapped = [swap_adjacent(s, probability, rng) for s in sentences]
    cos = cosines(original, common.encode_modes(model, swapped))
    row[f"swap_cosine_{probability:.2f}"] = float(cos.mean())
    row[f"swap_se_{probability:.2f}"] = float(cos.std(ddof=1) / np.sqrt(len(cos)))
  return row


def run(output_dir, scale="small", runs_dir=None, num_threads=0, parallel=1,
        train=True):
  """Trains (or reuses) the four models, swaps and encodes; writes CSV and figure."""
  models, records = common.train_for(
      settings, output_dir, scale, runs_dir, num_threads, parallel, record="word_swap",
      train=train, measure=lambda unused_setting, run_dir: measure(scale, run_dir))
  rows = []
  for (setting, latent), model_setting in models.items():
    record = records[model_setting.name]
    for probability in GRID[scale][0]:
      rows.append({"setting": setting, "latent": latent, "swap_probability": float(probability),
                   "mean_cosine": record[f"swap_cosine_{probability:.2f}"],
                   "standard_error": record[f"swap_se_{probability:.2f}"],
                   "sentences": int(record["swap_sentences"]), "seed": record["seed"]})
  output_dir = pathlib.Path(output_dir)
  common.write_csv(output_dir / "word_swap.csv", rows)
  _plot(rows, output_dir / "word_swap.png", scale)
  print(common.format_rows(
      rows, ["setting", "latent", "swap_probability", "mean_cosine", "standard_error"],
      f"word_swap (Fig. 5, PTB test, Inputless, scale={scale})", digits=6))
  return rows


def _plot(rows, path, scale):
  plt = common.pyplot()
  figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
  for axis, setting in zip(axes, ("nvrnn", "nvrnn_bow")):
    for latent, color in (("gaussian", "tab:orange"), ("vmf", "tab:blue")):
      points = [r for r in rows if r["setting"] == setting and r["latent"] == latent]
      p = np.array([r["swap_probability"] for r in points])
      mean = np.array([r["mean_cosine"] for r in points])
      error = 2 * np.array([r["standard_error"] for r in points])
      axis.plot(p, mean, "o-", color=color, markersize=3,
                label="G-VAE" if latent == "gaussian" else "v-VAE")
      axis.fill_between(p, mean - error, mean + error, color=color, alpha=0.2)
    axis.set_title(f"{'NVRNN' if setting == 'nvrnn' else 'NVRNN-BoW'}, Inputless "
                   f"(scale={scale})", fontsize=9)
    axis.set_xlabel("swap probability p")
    axis.grid(alpha=0.3)
  axes[0].set_ylabel("cos(code, code after swaps)")
  axes[0].legend(fontsize=8)
  common.save_figure(figure, path)


if __name__ == "__main__":
  common.main_for(run, trains=True)
