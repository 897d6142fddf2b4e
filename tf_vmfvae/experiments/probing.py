r"""Table 6 of the paper: is the latent code more than a bag of words?

Usage:
  python -m tf_vmfvae.experiments.probing --output_dir=docs/figures --scale=small
  python -m tf_vmfvae.experiments.probing --output_dir=docs/figures --scale=full \
      --runs_dir=runs --parallel=2 --num_threads=1

For Gaussian and vMF NVRNNs (configs/ptb_gaussian.flags, ptb.flags) and
their NVRNN-BoW variants, an MLP (one tanh layer) is fitted by least squares
on training sentences to map the code mu (the posterior mode) to the
sentence's bag of words, and the bag of words to mu; the table gives the
average cosine between prediction and target on the test set. A low
BoW -> mu cosine means the code holds more than the words. The bag of words
here is the word-count vector over the vocabulary, divided by the length,
the same target for every model (the paper averages word embeddings, which
differ from model to model). Beside each cosine, that of the constant
prediction (the training targets' mean): a collapsed code scores it, and BoW
cosines are high even then, since frequent words dominate every bag.
Writes probing.csv and probing.png.
"""

import pathlib

import keras
import numpy as np

from tf_vmfvae.experiments import common

# Table 6: (setting, latent, direction) -> average cosine.
PAPER = {("nvrnn", "gaussian", "mu_to_bow"): 0.74, ("nvrnn", "gaussian", "bow_to_mu"): 0.74,
         ("nvrnn", "vmf", "mu_to_bow"): 0.77, ("nvrnn", "vmf", "bow_to_mu"): 0.57,
         ("nvrnn_bow", "gaussian", "mu_to_bow"): 0.32, ("nvrnn_bow", "vmf", "mu_to_bow"): 0.23}
_CONFIGS = {("nvrnn", "gaussian"): ("ptb_gaussian", ()), ("nvrnn", "vmf"): ("ptb", ()),
            ("nvrnn_bow", "gaussian"): ("ptb_gaussian", ("--bow_conditioned",)),
            ("nvrnn_bow", "vmf"): ("ptb_bow", ())}
# scale -> (training sentences for the probes, probe epochs, probe width)
SIZES = {"small": (2000, 10, 64), "full": (10000, 20, 256)}


def settings(scale):
  return {key: common.setting(config, f"{key[0]} {key[1]}", scale, *extra)
          for key, (config, extra) in _CONFIGS.items()}


def bag_of_words(ids, vocabulary_size):
  """Word counts divided by sentence length, float32 [len(ids), vocabulary_size].

  Example:
  >>> [[round(float(v), 3) for v in row] for row in bag_of_words([np.array([1, 2, 2])], 4)]
  [[0.0, 0.333, 0.667, 0.0]]
  """
  bags = np.zeros((len(ids), vocabulary_size), np.float32)
  for i, sentence in enumerate(ids):
    np.add.at(bags[i], sentence, 1.0)
    bags[i] /= max(1, len(sentence))
  return bags


def mean_cosine(predictions, targets):
  """Average over rows of cos(prediction, target); a zero row counts 0."""
  norms = np.linalg.norm(predictions, axis=1) * np.linalg.norm(targets, axis=1)
  dots = np.sum(predictions * targets, axis=1)
  return float(np.mean(np.where(norms > 0, dots / np.maximum(norms, 1e-12), 0.0)))


def probe(train_inputs, train_targets, test_inputs, test_targets, epochs, width, seed=0):
  """Fits an MLP (inputs -> tanh -> targets) by least squares; the test cosine."""
  keras.utils.set_random_seed(seed)
  mlp = keras.Sequential([keras.Input((train_inputs.shape[1],)),
                          keras.layers.Dense(width, activation="tanh"),
                          keras.layers.Dense(train_targets.shape[1])])
  mlp.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
  mlp.fit(train_inputs, train_targets, batch_size=64, epochs=epochs, verbose=0)
  return mean_cosine(mlp.predict(test_inputs, batch_size=512, verbose=0), test_targets)


def measure(key, scale, run_dir):
  """The probe cosines of the model trained for `key` = (setting, latent).

  Returns {"cosine_<direction>", "baseline_<direction>"} for each direction
  of Table 6, and the probes' training and test sentences: the experiment's
  own columns of its record row.
  """
  num_train, epochs, width = SIZES[scale]
  model, splits = common.load_model(run_dir)
  rng = np.random.default_rng(0)
  train_ids = [splits.ids["train"][i] for i in rng.choice(
      len(splits.ids["train"]), min(num_train, len(splits.ids["train"])), replace=False)]
  test_ids = splits.ids["test"]
  size = len(splits.vocabulary)
  mu_train, mu_test = common.encode_modes(model, train_ids), common.encode_modes(
      model, test_ids)
  bow_train, bow_test = bag_of_words(train_ids, size), bag_of_words(test_ids, size)
  directions = {"mu_to_bow": (mu_train, bow_train, mu_test, bow_test)}
  if key[0] == "nvrnn":  # Table 6 has BoW -> mu for NVRNN only.
    directions["bow_to_mu"] = (bow_train, mu_train, bow_test, mu_test)
  row = {"probe_train_sentences": len(train_ids), "probe_test_sentences": len(test_ids)}
  for direction, arrays in directions.items():
    row[f"cosine_{direction}"] = probe(*arrays, epochs=epochs, width=width)
    row[f"baseline_{direction}"] = mean_cosine(
        np.broadcast_to(arrays[1].mean(axis=0), arrays[3].shape), arrays[3])
  return row


def run(output_dir, scale="small", runs_dir=None, num_threads=0, parallel=1,
        train=True):
  """Trains (or reuses) the four models, fits the probes; writes CSV and figure."""
  chosen = settings(scale)
  by_name = {model.name: key for key, model in chosen.items()}
  models, records = common.train_for(
      settings, output_dir, scale, runs_dir, num_threads, parallel, record="probing",
      train=train, measure=lambda setting, run_dir: measure(by_name[setting.name], scale, run_dir))
  rows = []
  for (setting, latent), model_setting in models.items():
    record = records[model_setting.name]
    for direction in ("mu_to_bow", "bow_to_mu"):
      if (setting, latent, direction) not in PAPER:
        continue
      rows.append({"setting": setting, "latent": latent, "direction": direction,
                   "cosine": record[f"cosine_{direction}"],
                   "baseline_cosine": record[f"baseline_{direction}"],
                   "paper_cosine": PAPER[(setting, latent, direction)],
                   "train_sentences": int(record["probe_train_sentences"]),
                   "test_sentences": int(record["probe_test_sentences"]),
                   "seed": record["seed"], "epochs": record["epochs"]})
  output_dir = pathlib.Path(output_dir)
  common.write_csv(output_dir / "probing.csv", rows)
  _plot(rows, output_dir / "probing.png", scale)
  print(common.format_rows(
      rows, ["setting", "latent", "direction", "cosine", "baseline_cosine", "paper_cosine",
             "train_sentences"],
      f"probing (Table 6, PTB test, average cosine, scale={scale}; paper: full scale)"))
  return rows


def _plot(rows, path, scale):
  plt = common.pyplot()
  figure, axis = plt.subplots(figsize=(7, 3.6))
  groups = [("nvrnn", "mu_to_bow"), ("nvrnn", "bow_to_mu"), ("nvrnn_bow", "mu_to_bow")]
  for offset, (latent, color) in enumerate((("gaussian", "tab:orange"), ("vmf", "tab:blue"))):
    values = [next((r["cosine"] for r in rows if (r["setting"], r["direction"]) == group
                    and r["latent"] == latent), np.nan) for group in groups]
    paper = [PAPER[(group[0], latent, group[1])] for group in groups]
    x = [i + 0.38 * offset for i in range(len(groups))]
    axis.bar(x, values, width=0.36, color=color, label=f"{latent} (ours)")
    axis.plot(x, paper, "k_", markersize=14, mew=2, label="paper" if offset else None)
  axis.set_xticks([i + 0.19 for i in range(len(groups))],
                  ["NVRNN mu->BoW", "NVRNN BoW->mu", "NVRNN-BoW mu->BoW"], fontsize=8)
  axis.set_ylabel("average test cosine")
  axis.set_ylim(0, 1)
  axis.set_title(f"Probing the code (scale={scale}; black: paper)", fontsize=9)
  axis.legend(fontsize=8)
  common.save_figure(figure, path)


if __name__ == "__main__":
  common.main_for(run, trains=True)
