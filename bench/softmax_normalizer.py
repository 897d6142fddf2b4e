"""The tied softmax's matmuls against the rest of its work (the normalizer).

Usage:
  python bench/softmax_normalizer.py [--rows 55000] [--train_rows 704] [--repeats 3]

Logits = h E^T + b ([rows, 100] · [100, 10K] for the tied PTB model), then
-log softmax at the target. On random data, best of `--repeats`, beside the
machine's matmul roofline measured in the same run:

- importance-weighted decoding (forward only, `--rows` token-samples): the
  matmul alone, and the NLL computed five ways: the model's
  `layers._sparse_softmax_cross_entropy`, the normalizer compiled by XLA,
  everything under XLA, slabs of rows in a loop;
- the training step (forward and backward, `--train_rows` tokens: batch 32
  of 22): the three matmuls alone, the model's loss, the loss with its
  forward and backward elementwise work each compiled by XLA, and
  TensorFlow's fused `sparse_softmax_cross_entropy_with_logits`.

Asserts only that the ways agree.
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


def _nll(logits, targets):
  """-log softmax(logits)[target] per row, written plainly (for XLA to fuse)."""
  return tf.reduce_logsumexp(logits, axis=1) - tf.gather(logits, targets, axis=1, batch_dims=1)


_normalizer_xla = tf.function(_nll, jit_compile=True)


@tf.function
def normalizer_under_xla(h, embeddings, bias, targets):
  return _normalizer_xla(_logits(h, embeddings, bias), targets)


@tf.function(jit_compile=True)
def all_under_xla(h, embeddings, bias, targets):
  return _nll(_logits(h, embeddings, bias), targets)


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


@tf.custom_gradient
def _loss_xla_pieces(logits, targets):
  nll, probabilities = _forward_xla(logits, targets)
  return nll, lambda upstream: (_backward_xla(probabilities, targets, upstream), None)


@tf.function(jit_compile=True)
def _forward_xla(logits, targets):
  shift = tf.reduce_max(logits, axis=1, keepdims=True)
  exponentials = tf.exp(logits - shift)
  totals = tf.reduce_sum(exponentials, axis=1)
  nll = (tf.math.log(totals) + shift[:, 0]
         - tf.gather(logits, targets, axis=1, batch_dims=1))
  return nll, exponentials / totals[:, None]


@tf.function(jit_compile=True)
def _backward_xla(probabilities, targets, upstream):
  return (probabilities - tf.one_hot(targets, tf.shape(probabilities)[1])) * upstream[:, None]


def _training_step(loss_of_logits):
  """Gradients of sum(loss(h E^T + b)) w.r.t. h, E, b."""
  @tf.function
  def run(h, embeddings, bias, targets):
    with tf.GradientTape() as tape:
      tape.watch([h, embeddings, bias])
      loss = tf.reduce_sum(loss_of_logits(_logits(h, embeddings, bias), targets))
    return tape.gradient(loss, [h, embeddings, bias])
  return run


TRAINING_WAYS = {
    # A loss linear in the logits: its gradient is the same three matmuls, no normalizer.
    "matmuls alone": _training_step(lambda logits, targets: 1e-3 * logits),
    "as the model": _training_step(layers._sparse_softmax_cross_entropy),  # pylint: disable=protected-access
    "elementwise under XLA": _training_step(_loss_xla_pieces),
    "TF's fused op": _training_step(
        lambda logits, targets: tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)),
}


def _best_seconds(run, args, repeats):
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), run(*args))
    best = min(best, time.perf_counter() - start)
  return best


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rows", type=int, default=55_000,
                      help="Token-samples (K=50 x 50 sentences x ~22 tokens).")
  parser.add_argument("--dim", type=int, default=100)
  parser.add_argument("--vocabulary", type=int, default=10_000)
  parser.add_argument("--train_rows", type=int, default=704,
                      help="Tokens of a training step (batch 32 x 22).")
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
  print(f"Importance-weighted decoding, forward only, {args.rows} token-samples:")
  for name, run in [("matmul alone", matmul_only), ("as the model", as_the_model),
                    ("normalizer under XLA", normalizer_under_xla),
                    ("all under XLA", all_under_xla), ("slabs of 256 rows", in_slabs(256)),
                    ("slabs of 1024 rows", in_slabs(1024))]:
    out = run(h, embeddings, bias, targets).numpy()  # Traces (and compiles).
    if run is not matmul_only:
      np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-3)
    best = _best_seconds(run, (h, embeddings, bias, targets), args.repeats)
    print(f"{name:>21}: {best * 1e3:7.1f} ms  {args.rows / best:8.0f} token-samples/s  "
          f"(the matmul at {flops / best / 1e9:5.1f} GFLOP/s)", flush=True)

  print(f"The training step's softmax, forward and backward, {args.train_rows} tokens:")
  train_args = (h[:args.train_rows], embeddings, bias, targets[:args.train_rows])
  reference = [t.numpy() for t in TRAINING_WAYS["as the model"](*train_args)]
  for name, run in TRAINING_WAYS.items():
    out = run(*train_args)  # Traces (and compiles).
    if name != "matmuls alone":
      for got, want in zip(out, reference):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-3, atol=1e-3)
    best = _best_seconds(run, train_args, 10 * args.repeats)
    print(f"{name:>21}: {best * 1e3:7.2f} ms  "
          f"(the matmuls at {3 * 2.0 * args.train_rows * args.dim * args.vocabulary / best / 1e9:5.1f}"
          f" GFLOP/s)", flush=True)


if __name__ == "__main__":
  main()
