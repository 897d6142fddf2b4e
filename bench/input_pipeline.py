"""Batches/s of the training input pipeline alone, against what training consumes.

Usage:
  TF_VMFVAE_DATA_DIR=../shared/data python bench/input_pipeline.py [--batch_size 32]

Iterates one epoch of the trainer's PTB dataset (`train_lib.epoch_dataset`,
configs/ptb.flags) without a model, then times the trainer's training step
on the same batches in the same run, and prints the pipeline's batches/s as
a multiple of the steps/s training takes. The epoch's dataset is built
anew each epoch (its shuffle depends on the epoch): that build is timed too.
"""

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position
import throughput  # pylint: disable=g-import-not-at-top,wrong-import-position

from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top,wrong-import-position
from tf_vmfvae import train_lib  # pylint: disable=g-import-not-at-top,wrong-import-position


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--steps", type=int, default=40, help="Timed training steps.")
  args = parser.parse_args()
  experiment = throughput.experiment_from_flagfile("ptb", batch_size=args.batch_size)
  splits = runs.load_data(experiment, splits=["train"])

  start = time.perf_counter()
  dataset = train_lib.epoch_dataset(experiment, splits, epoch=1)
  build = time.perf_counter() - start
  start = time.perf_counter()
  batches = sum(1 for _ in dataset)
  pipeline = batches / (time.perf_counter() - start)

  result = common.time_training_steps(
      experiment, splits, steps=args.steps)
  training = result["steps"] / result["seconds"]
  print(f"batch {args.batch_size}: building an epoch's dataset {build:.2f} s; pipeline "
        f"alone {pipeline:.0f} batches/s over {batches} batches; training "
        f"{training:.2f} steps/s; the pipeline is {pipeline / training:.0f}x what "
        "training consumes.")


if __name__ == "__main__":
  main()
