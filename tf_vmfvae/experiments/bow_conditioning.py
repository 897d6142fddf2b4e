r"""Table 5 of the paper: NVRNN-BoW on PTB, the decoder also fed the sentence's
mean word embedding.

Usage:
  python -m tf_vmfvae.experiments.bow_conditioning --output_dir=docs/figures --scale=small
  python -m tf_vmfvae.experiments.bow_conditioning --output_dir=docs/figures --scale=full \
      --runs_dir=runs --parallel=2 --num_threads=1

RNNLM, Gaussian VAE (annealed) and vMF VAE, Standard and Inputless, every
decoder conditioned on the bag of words (--bow_conditioned). With the words
handed to the decoder the Gaussian posterior collapses (KL and MI near 0);
the vMF's fixed KL keeps a code, and its MI says whether it is used. Scored
on the test set (ELBO; the RNNLM's NLL is exact). Writes
bow_conditioning.csv and bow_conditioning.png.
"""

import math
import pathlib

from tf_vmfvae.experiments import common

# Table 5: (NLL, KL, PPL); the RNNLM has no KL.
PAPER = {("standard", "rnnlm"): (79, math.nan, 43), ("standard", "gaussian"): (79, 0.0, 43),
         ("standard", "vmf"): (73, 0.2, 33), ("inputless", "rnnlm"): (106, math.nan, 152),
         ("inputless", "gaussian"): (106, 0.4, 153), ("inputless", "vmf"): (93, 11.4, 82)}
_CONFIGS = {("standard", "rnnlm"): ("ptb_rnnlm", ("--bow_conditioned",)),
            ("standard", "gaussian"): ("ptb_gaussian", ("--bow_conditioned",)),
            ("standard", "vmf"): ("ptb_bow", ()),
            ("inputless", "rnnlm"): ("ptb_rnnlm", ("--bow_conditioned",
                                                   "--decoder_mode=inputless")),
            ("inputless", "gaussian"): ("ptb_gaussian_inputless", ("--bow_conditioned",)),
            ("inputless", "vmf"): ("ptb_inputless", ("--bow_conditioned",))}


def settings(scale):
  """{(decoder mode, latent): `Setting`}."""
  return {key: common.setting(config, f"{key[0]} {key[1]} + BoW", scale, *extra)
          for key, (config, extra) in _CONFIGS.items()}


def run(output_dir, scale="small", runs_dir=None, num_threads=0, parallel=1,
        train=True):
  """Trains (or reuses) the six models; writes the CSV and the figure."""
  models, records = common.train_for(settings, output_dir, scale, runs_dir,
                                    num_threads, parallel, record="bow_conditioning",
                                    train=train)
  rows = []
  for (mode, latent), model in models.items():
    record = records[model.name]
    paper_nll, paper_kl, paper_ppl = PAPER[(mode, latent)]
    rows.append({"decoder": mode, "latent": latent, "nll": record["test_nll"],
                 "kl": record["test_kl"] if latent != "rnnlm" else math.nan,
                 "ppl": record["test_ppl"], "mi": _number(record["test_mi"]),
                 "active_units": _number(record["test_active_units"]),
                 "paper_nll": float(paper_nll), "paper_kl": paper_kl,
                 "paper_ppl": float(paper_ppl), "seed": record["seed"],
                 "epochs": record["epochs"], "train_seconds": record["train_seconds"]})
  output_dir = pathlib.Path(output_dir)
  common.write_csv(output_dir / "bow_conditioning.csv", rows)
  _plot(rows, output_dir / "bow_conditioning.png", scale)
  print(common.format_rows(
      rows, ["decoder", "latent", "nll", "kl", "ppl", "mi", "active_units", "paper_nll",
             "paper_kl", "paper_ppl"],
      f"bow_conditioning (Table 5, PTB test, NVRNN-BoW, scale={scale}; paper: full scale)"))
  return rows


def _number(value):
  """A record's number, or NaN where the model has none (the RNNLM's MI)."""
  return math.nan if value in ("", None) else float(value)


def _plot(rows, path, scale):
  plt = common.pyplot()
  figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
  latents = ("rnnlm", "gaussian", "vmf")
  for i, mode in enumerate(("standard", "inputless")):
    points = [r for r in rows if r["decoder"] == mode]
    x = [i * 4 + latents.index(r["latent"]) for r in points]
    colors = [("tab:gray", "tab:orange", "tab:blue")[latents.index(r["latent"])]
              for r in points]
    axes[0].bar(x, [r["ppl"] for r in points], color=colors)
    axes[1].bar(x, [0.0 if math.isnan(r["kl"]) else r["kl"] for r in points], color=colors)
    axes[2].bar(x, [0.0 if math.isnan(r["mi"]) else r["mi"] for r in points], color=colors)
  ticks = [i * 4 + j for i in range(2) for j in range(3)]
  labels = [f"{m[:5]}.\n{l}" for m in ("standard", "inputless")
            for l in ("RNNLM", "G-VAE", "v-VAE")]
  for axis, title in zip(axes, ("test PPL", "KL [nats]", "mutual information [nats]")):
    axis.set_xticks(ticks, labels, fontsize=7)
    axis.set_title(f"{title} (scale={scale})", fontsize=9)
    axis.grid(alpha=0.3, axis="y")
  common.save_figure(figure, path)


if __name__ == "__main__":
  common.main_for(run, trains=True)
