"""Training throughput of the PTB NVRNN (tokens per second), by batch size.

Usage:
  TF_VMFVAE_DATA_DIR=../shared/data python bench/train_throughput.py [--batch_sizes 20,64]

Builds the paper's vMF NVRNN (emb 100, hidden 400, latent 50, 10K-word
softmax), takes the first 110 bucketed PTB training batches, trains 10 as a
warm-up and times the next 100 with `Model.fit` (graph mode, SGD, clip 0.25).
Prints tokens/s (tokens incl. <eos>) and steps/s for each batch size, and the
ratio to the first one, all from this one run. For reference, the paper's
own code trains PTB at about 2,900 tokens/s on one thread of this CPU
(4,400 on two).
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


def measure(splits, batch_size, warmup=10, steps=100):
  batches = splits.dataset("train", batch_size, shuffle=True, seed=0).take(warmup + steps)
  batches = batches.cache()
  tokens = sum(int(tf.math.count_nonzero(b["tokens"])) for b in batches.skip(warmup))
  model = NVRNN(len(splits.vocabulary), concentration=35.0, seed=0)
  model.compile(optimizer=keras.optimizers.SGD(1.0, global_clipnorm=0.25))
  model.fit(batches.take(warmup), verbose=0)
  start = time.perf_counter()
  model.fit(batches.skip(warmup), verbose=0)
  seconds = time.perf_counter() - start
  return tokens / seconds, steps / seconds


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_sizes", default="20,64")
  args = parser.parse_args()
  splits = data.load_sentence_splits(config.DataConfig(dataset="ptb"), splits=["train"])
  print(f"tf={tf.__version__} vocabulary={len(splits.vocabulary)} cpus={os.cpu_count()}")
  first = None
  for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
    tokens_per_second, steps_per_second = measure(splits, batch_size)
    first = first or tokens_per_second
    print(f"batch {batch_size:4d}: {tokens_per_second:8.0f} tokens/s  "
          f"{steps_per_second:6.2f} steps/s  (x{tokens_per_second / first:.2f})")


if __name__ == "__main__":
  main()
