"""What the benchmarks share: the roofline, FLOP counts, timing the trainer's step.

Every figure a bench prints is measured in the run that prints it; the
roofline (fp32 matmul throughput) is measured in the same run, because this
shared machine's speed moves by +-20 % from one run to the next.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from tf_vmfvae import optimization  # pylint: disable=g-import-not-at-top
from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
from tf_vmfvae import train_lib  # pylint: disable=g-import-not-at-top


def matmul_gflops(m, k, n, seconds=2.0):
  """Measured fp32 GFLOP/s of an [m, k] x [k, n] matmul in a tf.function."""
  a = tf.random.stateless_normal([m, k], seed=[1, 2])
  b = tf.random.stateless_normal([k, n], seed=[3, 4])
  matmul = tf.function(tf.matmul)
  matmul(a, b).numpy()
  calls, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    result = matmul(a, b)
    calls += 1
  result.numpy()
  return 2.0 * m * k * n * calls / (time.perf_counter() - start) / 1e9


def roofline():
  """(large 2048^2 matmul GFLOP/s, recurrent 32x400 x 400x1600 GFLOP/s)."""
  return matmul_gflops(2048, 2048, 2048), matmul_gflops(32, 400, 1600)


def print_machine_and_roofline():
  """Prints the machine (CPU model, SIMD level, CPUs, GPUs, allocator) and its roofline.

  Returns `roofline()`'s pair, measured now, so a bench's figures and the
  ceiling they are compared with come from the same run.
  """
  large, recurrent = roofline()
  try:  # Only TensorFlow's BFC allocator keeps statistics: ask it, not the variable.
    tf.config.experimental.get_memory_info("CPU:0")
    allocator = "BFC"
  except ValueError:
    allocator = "default"
  print(f"tf {tf.__version__} on {runs.format_machine(runs.describe_machine())}, "
        f"{allocator} CPU allocator. Roofline: fp32 matmul 2048^2 {large:.0f} GFLOP/s; "
        f"recurrent 32x400 x 400x1600 {recurrent:.0f} GFLOP/s.", flush=True)
  return large, recurrent


def nvrnn_flops_per_token(model):
  """Matmul FLOPs of one NVRNN training token, forward + backward (3x forward).

  Counts the encoder and decoder LSTMs (input and recurrent matmuls), the
  output projection and the softmax; the per-sentence layers (latent
  projection, initial state) are under 1 % and left out.
  """
  h, e, v = model.hidden_dim, model.embedding_dim, model.vocabulary_size
  forward = 0
  if model.latent is not None:
    encoder_input = e
    for _ in range(model.encoder_layers):
      forward += 2 * (encoder_input + h) * 4 * h * (2 if model.bidirectional else 1)
      encoder_input = h * (2 if model.bidirectional else 1)
  decoder_input = (e if model.decoder_mode == "standard" else 0)
  decoder_input += (model.latent_dim if model.latent is not None else 0)
  decoder_input += (e if model.bow_conditioned else 0)
  decoder_input += (model.label_dim if model.num_labels else 0)
  decoder_input = max(decoder_input, 1)
  forward += 2 * (decoder_input + h) * 4 * h
  forward += 2 * h * e + 2 * e * v if model.tie_embeddings else 2 * h * v
  return 3 * forward


def nvdm_flops_per_document(model, vocabulary_size):
  """Matmul FLOPs of one NVDM training document, forward + backward.

  The encoder's first layer multiplies the dense count vector, so it costs
  as much for a short document as for a long one; the decoder scores the
  whole vocabulary once per document.
  """
  config = model.get_config()
  h, d = config["hidden_dim"], config["latent_dim"]
  forward = 2 * vocabulary_size * h + 2 * h * h * (config["encoder_layers"] - 1) + 2 * h * d
  decoder_hidden = config["decoder_hidden_dim"]
  forward += (2 * d * decoder_hidden + 2 * decoder_hidden * vocabulary_size if decoder_hidden
              else 2 * d * vocabulary_size)
  return 3 * forward


class _StepClock(keras.callbacks.Callback):
  """Wall time from the end of batch `warmup` to the end of training."""

  def __init__(self, warmup):
    super().__init__()
    self.warmup = warmup
    self.start = self.end = None

  def on_train_batch_end(self, batch, logs=None):
    if batch == self.warmup - 1:
      float(logs["loss"])  # The step has finished: start the clock after it.
      self.start = time.perf_counter()

  def on_train_end(self, logs=None):
    self.end = time.perf_counter()


def time_training_steps(experiment, splits, warmup=10, steps=60, callbacks=()):
  """Times the trainer's own training step on its own batches.

  Builds the model, optimizer, strategy (`train_lib.make_strategy("auto")`)
  and epoch-0 dataset exactly as `train_lib.train` does, runs `Model.fit`
  over `warmup + steps` batches and times the last `steps`; `callbacks`
  (e.g. a profiler's) go to `fit` after the clock's.

  Returns:
    dict: seconds, steps, examples and tokens of the timed batches (tokens:
    non-padding targets; for documents, words), and the model.
  """
  strategy = train_lib.make_strategy("auto")
  keras.utils.set_random_seed(experiment.train.seed)
  with strategy.scope():
    model = train_lib.build_model(experiment, len(splits.vocabulary), splits.num_labels)
    model.compile(optimizer=optimization.make_optimizer(
        experiment.train, train_lib.steps_per_epoch(experiment, splits)))
  dataset = train_lib.epoch_dataset(experiment, splits, epoch=0).take(warmup + steps)
  examples = tokens = 0
  for batch in dataset.skip(warmup):
    first = batch["tokens"] if "tokens" in batch else batch["counts"]
    examples += int(first.shape[0])
    tokens += (int(tf.math.count_nonzero(first)) if "tokens" in batch
               else float(tf.reduce_sum(first)))
  clock = _StepClock(warmup)
  model.fit(dataset, epochs=1, verbose=0, callbacks=[clock, *callbacks])
  return {"seconds": clock.end - clock.start, "steps": steps, "examples": examples,
          "tokens": tokens, "model": model}


def percent(part, whole):
  return f"{100.0 * part / whole:5.1f} %"

