"""The softmax of importance-weighted decoding: its matmul against the rest.

Usage:
  python bench/softmax_normalizer.py [--rows 55000] [--repeats 3]

The evaluator's K-sample decoding scores every token-sample against the
whole vocabulary: logits = h E^T + b ([rows, 100] · [100, 10K] for the tied
PTB model), then -log softmax at the target. Times, on random data, the
matmul alone and the per-row NLL computed four ways (the model's
`layers._sparse_softmax_cross_entropy`, the normalizer compiled by XLA,
everything under XLA, and slabs of rows in a loop); prints the best of
`--repeats` beside the machine's matmul roofline measured in the same run.
Asserts only that the four ways agree.
"""

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-order
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-order

from tf_vmfvae.models import layers  # pylint: disable=g-import-not-at-top


def _logits(h, embeddings, bias):
  return tf.nn.bias_add(tf.matmul(h, embeddings, transpose_b=True), bias)


@tf.function
def matmul_only(h, embeddings, bias, targets):
  del bias, targets
  return tf.reduce_sum(tf.matmul(h, embeddings, transpose_b=True))


@tf.function
def as_the_model(h, embeddings, bias, targets):
  return layers._sparse_softmax_cross_entropy(_logits(h, embeddings, bias), targets)  # pylint: disable=protected-access


@tf.function(jit_compile=True)
def _normalizer_xla(logits, targets):
  return (tf.reduce_logsumexp(logits, axis=1)
          - tf.gather(logits, targets, axis=1, batch_dims=1))


@tf.function
def normalizer_under_xla(h, embeddings, bias, targets):
  return _normalizer_xla(_logits(h, embeddings, bias), targets)


@tf.function(jit_compile=True)
def all_under_xla(h, embeddings, bias, targets):
  logits = _logits(h, embeddings, bias)
  return tf.reduce_logsumexp(logits, axis=1) - tf.gather(logits, targets, axis=1, batch_dims=1)


def in_slabs(slab):
  """The model's NLL on `slab` rows at a time (a working set that fits the cache)."""
  @tf.function
  def run(h, embeddings, bias, targets):
    count = (tf.shape(h)[0] + slab - 1) // slab

    def body(i, parts):
      rows = slice(i * slab, (i + 1) * slab)
      return i + 1, parts.write(i, as_the_model(h[rows], embeddings, bias, targets[rows]))

    _, parts = tf.while_loop(lambda i, _: i < count, body,
                             [0, tf.TensorArray(tf.float32, count, infer_shape=False)])
    return parts.concat()
  return run


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rows", type=int, default=55_000,
                      help="Token-samples (K=50 x 50 sentences x ~22 tokens).")
  parser.add_argument("--dim", type=int, default=100)
  parser.add_argument("--vocabulary", type=int, default=10_000)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  common.print_machine_and_roofline()
  rng = np.random.default_rng(0)
  h = tf.constant(0.3 * rng.normal(size=(args.rows, args.dim)), tf.float32)
  embeddings = tf.constant(0.3 * rng.normal(size=(args.vocabulary, args.dim)), tf.float32)
  bias = tf.constant(rng.normal(size=(args.vocabulary,)), tf.float32)
  targets = tf.constant(rng.integers(1, args.vocabulary, size=(args.rows,)), tf.int32)
  flops = 2.0 * args.rows * args.dim * args.vocabulary
  reference = as_the_model(h, embeddings, bias, targets).numpy()
  for name, run in [("matmul alone", matmul_only), ("as the model", as_the_model),
                    ("normalizer under XLA", normalizer_under_xla),
                    ("all under XLA", all_under_xla), ("slabs of 256 rows", in_slabs(256)),
                    ("slabs of 1024 rows", in_slabs(1024))]:
    out = run(h, embeddings, bias, targets).numpy()  # Traces (and compiles).
    if run is not matmul_only:
      np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-3)
    best = float("inf")
    for _ in range(args.repeats):
      start = time.perf_counter()
      run(h, embeddings, bias, targets).numpy()
      best = min(best, time.perf_counter() - start)
    print(f"{name:>21}: {best * 1e3:7.1f} ms  {args.rows / best:8.0f} token-samples/s  "
          f"(the matmul at {flops / best / 1e9:5.1f} GFLOP/s)", flush=True)


if __name__ == "__main__":
  main()
