"""Training and evaluation throughput against the machine's measured roofline.

Usage:
  TF_VMFVAE_DATA_DIR=../shared/data python bench/throughput.py [--steps 60]
      [--configs ptb:32,ptb:64,ptb:128,ptb_paper:20,ptb:32:1] [--skip_nvdm] [--skip_iw]
      [--processes 2]

In one run: the fp32 matmul roofline (2048^2, and the batch-32 recurrent
matmul 32x400 x 400x1600); then, for each `flagfile:batch_size` (or
`flagfile:batch_size:bucket_width`, batching by another length-bucket width
than the flagfile's), the
trainer's own training step (`train_lib`'s strategy, model, optimizer and
epoch dataset, through `Model.fit`) on PTB: tokens/s (non-padding targets,
<eos> included), achieved matmul GFLOP/s (every LSTM, projection and
softmax matmul, forward and backward) and that as a fraction of the
roofline; NVDM on 20 Newsgroups (configs/20news.flags): documents/s; and
the evaluator's importance-weighted decoding (K samples per sentence):
token-samples/s. With `--processes N`, each configuration is also timed as
N copies of the trainer's step at once, one thread each (how a grid of
runs shares the machine): their tokens/s and the sum. Prints measured
figures only; asserts nothing.
"""

import argparse
import dataclasses
import pathlib
import re
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

import keras  # pylint: disable=g-import-not-at-top,wrong-import-order
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-order

from tf_vmfvae import evaluate_lib  # pylint: disable=g-import-not-at-top
from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
from tf_vmfvae import train  # pylint: disable=g-import-not-at-top


def experiment_from_flagfile(name, **train_overrides):
  """The ExperimentConfig `python -m tf_vmfvae.train --flagfile=...` would build."""
  experiment = train.experiment_from_args(f"--flagfile={name}")
  return dataclasses.replace(
      experiment, train=dataclasses.replace(experiment.train, **train_overrides))


def bench_nvrnn(name, batch_size, splits, steps, roofline, bucket_width=None):
  experiment = experiment_from_flagfile(name, batch_size=batch_size)
  if bucket_width is not None:
    experiment = dataclasses.replace(
        experiment, data=dataclasses.replace(experiment.data, bucket_width=bucket_width))
  result = common.time_training_steps(experiment, splits, steps=steps)
  tokens_per_second = result["tokens"] / result["seconds"]
  flops = common.nvrnn_flops_per_token(result["model"]) * tokens_per_second
  print(f"{name + '.flags':>17} batch {batch_size:4d} bucket "
        f"{experiment.data.bucket_width}: {tokens_per_second:7.0f} tokens/s  "
        f"{result['steps'] / result['seconds']:5.2f} steps/s  {flops / 1e9:6.1f} GFLOP/s "
        f"= {common.percent(flops / 1e9, roofline)} of the roofline  "
        f"({common.nvrnn_flops_per_token(result['model']) / 1e6:.1f} MFLOP/token)",
        flush=True)
  result["bucket_width"] = experiment.data.bucket_width
  return result


def bench_processes(item, processes, steps):
  """Tokens/s of `processes` one-thread copies of the step at once: (each, sum)."""
  command = [sys.executable, __file__, "--configs", item, "--steps", str(steps),
             "--skip_iw", "--skip_nvdm", "--num_threads", "1", "--no_roofline"]
  children = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
              for _ in range(processes)]
  rates = []
  for child in children:
    output, _ = child.communicate()
    found = re.search(r"batch +\d+ bucket \d+: +(\d+) tokens/s", output)
    if child.returncode or not found:
      raise SystemExit(f"a copy of {item} failed (exit {child.returncode}): {output[-500:]}")
    rates.append(float(found.group(1)))
  print(f"{item:>22} x {processes} processes, 1 thread each: "
        f"{' + '.join(f'{r:.0f}' for r in rates)} = {sum(rates):.0f} tokens/s", flush=True)
  return rates


def bench_iw(model, splits, bucket_width, num_samples=50, batches=6, batch_size=50):
  """Token-samples/s of the evaluator's importance-weighted decoding, and of
  its decoder LSTM alone (the hidden states of the same tiled batches): the
  rest of the time is the softmax (logits over the vocabulary and their
  normalizer).

  On shuffled, length-bucketed batches (as the evaluator's IW pass
  buckets), so that the timed sentences have the corpus's length mix.
  """
  evaluator = evaluate_lib.Evaluator(model, num_samples, num_samples)
  hidden = keras.Model(model.decoder.inputs, model.decoder.get_layer("output_dropout").output)

  @tf.function(reduce_retracing=True)
  def lstm_only(batch):
    params = model.latent.posterior_parameters(model.encode_features(batch))
    z = model.latent.sample(params, num_samples=num_samples)
    tiled = evaluate_lib._tile(batch, num_samples)  # pylint: disable=protected-access
    return tf.reduce_sum(hidden(model.decoder_inputs(tiled, tf.reshape(z, [-1, z.shape[-1]]))))

  dataset = splits.dataset("train", batch_size, shuffle=True, seed=0,
                           bucket_width=bucket_width).take(batches + 2)
  rates = []
  for run in (evaluator.iw_nll, lstm_only):
    timed = tokens = 0.0
    for i, batch in enumerate(dataset):
      start = tf.timestamp()
      run(batch).numpy()
      if i > 1:  # The first two batches trace (the second with relaxed shapes).
        timed += float(tf.timestamp() - start)
        tokens += float(tf.math.count_nonzero(batch["tokens"])) * num_samples
    rates.append(tokens / timed)
  return rates


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--configs", default="ptb:32,ptb:64,ptb:128,ptb_paper:20",
                      help="Comma-separated flagfile:batch_size[:bucket_width] items "
                      "(configs/<flagfile>.flags).")
  parser.add_argument("--steps", type=int, default=60, help="Timed steps per configuration.")
  parser.add_argument("--skip_nvdm", action="store_true")
  parser.add_argument("--skip_iw", action="store_true")
  parser.add_argument("--processes", type=int, default=1,
                      help="Also time each configuration as this many one-thread copies "
                      "at once.")
  parser.add_argument("--num_threads", type=int, default=0,
                      help="TensorFlow threads (0: all cores).")
  parser.add_argument("--no_roofline", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()

  runs.set_num_threads(args.num_threads)
  large = 1.0 if args.no_roofline else common.print_machine_and_roofline()[0]
  splits = runs.load_data(experiment_from_flagfile("ptb"), splits=["train"])
  last = None
  for item in args.configs.split(","):
    name, batch_size, *bucket_width = item.split(":")
    last = bench_nvrnn(name, int(batch_size), splits, args.steps, large,
                       int(bucket_width[0]) if bucket_width else None)
    if args.processes > 1:
      bench_processes(item, args.processes, args.steps)
  if not args.skip_iw:
    rate, lstm_rate = bench_iw(last["model"], splits, last["bucket_width"])
    print(f"importance-weighted decoding (K=50, 50 sentences a batch, last model, 6 "
          f"shuffled batches, bucket {last['bucket_width']}): "
          f"{rate:.0f} token-samples/s; the PTB test set (82,430 tokens) at K=500: "
          f"{82430 * 500 / rate / 60:.0f} min, of which the decoder LSTM "
          f"({lstm_rate:.0f} token-samples/s alone) {82430 * 500 / lstm_rate / 60:.0f} min "
          f"and the softmax the rest", flush=True)
  if not args.skip_nvdm:
    experiment = experiment_from_flagfile("20news")
    documents = runs.load_data(experiment, splits=["train"])
    result = common.time_training_steps(experiment, documents, steps=args.steps)
    flops = common.nvdm_flops_per_document(result["model"], len(documents.vocabulary))
    rate = result["examples"] / result["seconds"]
    print(f"{'20news.flags':>17} batch {experiment.train.batch_size:4d}: {rate:7.0f} "
          f"documents/s  {flops * rate / 1e9:6.1f} GFLOP/s = "
          f"{common.percent(flops * rate / 1e9, large)} of the roofline", flush=True)


if __name__ == "__main__":
  main()
