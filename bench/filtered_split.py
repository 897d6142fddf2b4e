"""Runs' validation ELBO on the whole split and without its one-word sentences.

Usage:
  TF_VMFVAE_DATA_DIR=../shared/data python bench/filtered_split.py --model_dir runs/full/ptb \
      [--model_dir runs/full/ptb_inputless ...] [--output_csv scores.csv]

Validation and test used to be filtered like training (sentences of at
least 2 words: PTB validation 3,357 of 3,370 sentences), as in the paper's
code; they are now scored whole. This scores the run's best checkpoint once
over the whole validation split in file order (one z per sentence, the
evaluator's `elbo_terms`) and prints the NLL per sentence and the PPL of
the whole split and of the sentences the old filter kept, from the same
draws: how a number measured on the filtered split compares. Several runs
are scored one after the other; `--output_csv` also writes a row per run.
"""

import argparse
import csv
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top

from tf_vmfvae import evaluate_lib  # pylint: disable=g-import-not-at-top
from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
from tf_vmfvae.data import pipeline  # pylint: disable=g-import-not-at-top


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model_dir", required=True, action="append",
                      help="A run directory; repeat for several.")
  parser.add_argument("--output_csv", help="Also write one row per run here.")
  parser.add_argument("--split", default="valid")
  parser.add_argument("--min_words", type=int, default=2, help="The old filter.")
  args = parser.parse_args()
  rows = [score(model_dir, args.split, args.min_words) for model_dir in args.model_dir]
  if args.output_csv:
    with open(args.output_csv, "w", newline="") as f:
      writer = csv.DictWriter(f, fieldnames=list(rows[0]))
      writer.writeheader()
      writer.writerows(rows)


def score(model_dir, split, min_words):
  """Prints and returns the best checkpoint's NLL and PPL, whole and filtered."""
  model, experiment = runs.load_trained(model_dir)
  ids = runs.load_data(experiment, model_dir, splits=[split]).ids[split]
  evaluator = evaluate_lib.Evaluator(model, 0, 1)
  nll, tokens = [], []
  for batch in pipeline.sentence_dataset(ids, batch_size=50, bucket_width=0):
    recon, kl, _, batch_tokens, _ = evaluator.elbo_terms(batch)
    nll.append((recon + kl).numpy())
    tokens.append(batch_tokens.numpy())
  nll, tokens = np.concatenate(nll), np.concatenate(tokens)
  kept = np.array([len(s) >= min_words for s in ids])
  row = {"model_dir": model_dir, "split": split}
  for name, label, mask in (("whole", "whole", np.ones_like(kept)),
                            ("filtered", f"filtered (>= {min_words} words)", kept)):
    sentences, mean_nll = int(mask.sum()), float(nll[mask].mean())
    ppl = float(np.exp(nll[mask].sum() / tokens[mask].sum()))
    print(f"{model_dir} {split} {label}: {sentences} sentences, {tokens[mask].sum():.0f} "
          f"tokens, NLL {mean_nll:.3f}, PPL {ppl:.2f}", flush=True)
    row.update({f"{name}_sentences": sentences, f"{name}_nll": mean_nll, f"{name}_ppl": ppl})
  return row


if __name__ == "__main__":
  main()
