"""A run's validation ELBO on the whole split and without its one-word sentences.

Usage:
  TF_VMFVAE_DATA_DIR=../shared/data python bench/filtered_split.py --model_dir runs/full/ptb

Validation and test used to be filtered like training (sentences of at
least 2 words: PTB validation 3,357 of 3,370 sentences), as in the paper's
code; they are now scored whole. This scores the run's best checkpoint once
over the whole validation split in file order (one z per sentence, the
evaluator's `elbo_terms`) and prints the NLL per sentence and the PPL of
the whole split and of the sentences the old filter kept, from the same
draws: how a number measured on the filtered split compares.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top

from tf_vmfvae import evaluate_lib  # pylint: disable=g-import-not-at-top
from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
from tf_vmfvae.data import pipeline  # pylint: disable=g-import-not-at-top


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model_dir", required=True)
  parser.add_argument("--split", default="valid")
  parser.add_argument("--min_words", type=int, default=2, help="The old filter.")
  args = parser.parse_args()
  model, experiment = runs.load_trained(args.model_dir)
  ids = runs.load_data(experiment, args.model_dir, splits=[args.split]).ids[args.split]
  evaluator = evaluate_lib.Evaluator(model, 0, 1)
  nll, tokens = [], []
  for batch in pipeline.sentence_dataset(ids, batch_size=50, bucket_width=0):
    recon, kl, _, batch_tokens, _ = evaluator.elbo_terms(batch)
    nll.append((recon + kl).numpy())
    tokens.append(batch_tokens.numpy())
  nll, tokens = np.concatenate(nll), np.concatenate(tokens)
  kept = np.array([len(s) >= args.min_words for s in ids])
  for name, mask in (("whole", np.ones_like(kept)),
                     (f"filtered (>= {args.min_words} words)", kept)):
    print(f"{args.split} {name}: {mask.sum()} sentences, {tokens[mask].sum():.0f} tokens, "
          f"NLL {nll[mask].mean():.3f}, PPL {np.exp(nll[mask].sum() / tokens[mask].sum()):.2f}")


if __name__ == "__main__":
  main()
