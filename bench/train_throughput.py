"""Training throughput of the PTB NVRNN (tokens per second), by configuration.

Usage:
  TF_VMFVAE_DATA_DIR=../shared/data python bench/train_throughput.py \
      [--configs untied:20,tied:20,tied:32,untied:64] [--steps 100]

Builds the paper's vMF NVRNN (emb 100, hidden 400, latent 50, 10K-word
softmax), either as in the paper ("untied": a separate 400 x 10K softmax
matrix) or with the softmax tied to the input embeddings ("tied": a
400 -> 100 projection, then scores against the 10K x 100 embeddings). For
each configuration it takes bucketed PTB training batches, trains 10 as a
warm-up and times the next `--steps` with `Model.fit` (graph mode, SGD, clip
0.25). Prints tokens/s (incl. <eos>) and steps/s, and the ratio to the first
configuration, all from this one run. For reference, the paper's own code
trains PTB at about 2,900 tokens/s on one thread of this CPU (4,400 on two).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from tf_vmfvae import config  # pylint: disable=g-import-not-at-top
from tf_vmfvae import data  # pylint: disable=g-import-not-at-top
from tf_vmfvae.models import NVRNN  # pylint: disable=g-import-not-at-top


def measure(splits, batch_size, tie_embeddings, warmup=10, steps=100):
  batches = splits.dataset("train", batch_size, shuffle=True, seed=0).take(warmup + steps)
  batches = batches.cache()
  tokens = sum(int(tf.math.count_nonzero(b["tokens"])) for b in batches.skip(warmup))
  model = NVRNN(len(splits.vocabulary), concentration=35.0, tie_embeddings=tie_embeddings,
                seed=0)
  model.compile(optimizer=keras.optimizers.SGD(1.0, global_clipnorm=0.25))
  model.fit(batches.take(warmup), verbose=0)
  start = time.perf_counter()
  model.fit(batches.skip(warmup), verbose=0)
  seconds = time.perf_counter() - start
  return tokens / seconds, steps / seconds, model.count_params()


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--configs", default="untied:20,tied:20,tied:32,untied:64,tied:64",
                      help="Comma-separated softmax:batch_size pairs.")
  parser.add_argument("--steps", type=int, default=100)
  args = parser.parse_args()
  splits = data.load_sentence_splits(config.DataConfig(dataset="ptb"), splits=["train"])
  print(f"tf={tf.__version__} vocabulary={len(splits.vocabulary)} cpus={os.cpu_count()}")
  first = None
  for item in args.configs.split(","):
    softmax, batch_size = item.split(":")
    if softmax not in ("tied", "untied"):
      raise ValueError(f"softmax must be 'tied' or 'untied', got {softmax!r}.")
    tokens_per_second, steps_per_second, params = measure(
        splits, int(batch_size), softmax == "tied", steps=args.steps)
    first = first or tokens_per_second
    print(f"{softmax:>6} batch {int(batch_size):4d} ({params / 1e6:.2f}M params): "
          f"{tokens_per_second:8.0f} tokens/s  {steps_per_second:6.2f} steps/s  "
          f"(x{tokens_per_second / first:.2f})")


if __name__ == "__main__":
  main()
