"""A GPU check, ready to run where a GPU is lent: train, time, export, reload.

Usage:
  TF_VMFVAE_DATA_DIR=../shared/data python bench/gpu_check.py [--epochs 2]
      [--steps_per_epoch 400] [--output_dir /tmp/gpu_check]

Without a GPU it prints one line saying so and exits 0 (CI has none). With
one, in a few minutes: names the GPUs and measures their fp32 matmul
roofline (4096^2); checks that the NVRNN's LSTM takes Keras' cuDNN kernel
(a `CudnnRNN` op in its graph; `FusedLSTM` is the CPU path only); trains
`configs/ptb.flags` for `--epochs` epochs of at most `--steps_per_epoch`
batches under `MirroredStrategy` over the local GPUs with the trainer
itself (`train_lib.train`), once as shipped and once with `--jit_compile
--sampler=table` (XLA), and prints tokens/s and achieved GFLOP/s of each
beside the roofline; exports the best model as a SavedModel, reloads it and
scores a sentence through the `score` signature. Exits non-zero on the
first failure, naming it.
"""

import argparse
import dataclasses
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-order

ROOT = pathlib.Path(__file__).resolve().parent.parent


def fail(what):
  print(f"gpu_check: FAILED: {what}", flush=True)
  sys.exit(1)


def check_cudnn_lstm():
  """True if the zoo's LSTM layer runs Keras' cuDNN kernel on this machine."""
  from tf_vmfvae.models import lstm  # pylint: disable=g-import-not-at-top
  layer = lstm.FusedLSTM(64, return_sequences=True)
  function = tf.function(lambda x, mask: layer(x, mask=mask))
  graph = function.get_concrete_function(tf.TensorSpec([8, 12, 16], tf.float32),
                                         tf.TensorSpec([8, 12], tf.bool)).graph
  names = set()
  for op in graph.get_operations():
    names.add(op.type)
    for inner in getattr(op, "_function_graphs", ()) or ():
      names.update(o.type for o in inner.get_operations())
  for fn in graph._functions.values():  # pylint: disable=protected-access
    names.update(node.op for node in fn.definition.node_def)
  return any("CudnnRNN" in name for name in names)


def train_and_report(experiment, model_dir, label, roofline):
  """Trains under MirroredStrategy over the local GPUs; prints each epoch's speed."""
  from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
  from tf_vmfvae import train_lib  # pylint: disable=g-import-not-at-top
  try:
    train_lib.train(experiment, model_dir, strategy=tf.distribute.MirroredStrategy(),
                    verbose=2)
  except Exception as error:  # pylint: disable=broad-except
    fail(f"training ({label}): {type(error).__name__}: {error}")
  history = runs.load_state(model_dir)["history"]
  model, _ = runs.load_trained(model_dir)
  flops = common.nvrnn_flops_per_token(model)
  for logs in history:
    rate = logs["train_tokens_per_second"]
    print(f"{label}, epoch {logs['epoch']}: {rate:.0f} tokens/s, {rate * flops / 1e9:.0f} "
          f"GFLOP/s = {common.percent(rate * flops / 1e9, roofline)} of the roofline; "
          f"validation NLL {logs['val_nll']:.2f}", flush=True)
  if not all(tf.math.is_finite(logs["loss"]) for logs in history):
    fail(f"the training loss is not finite ({label})")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--epochs", type=int, default=2)
  parser.add_argument("--steps_per_epoch", type=int, default=400)
  parser.add_argument("--output_dir", default=None,
                      help="Where the run and the export go (default: a temporary folder).")
  args = parser.parse_args()
  gpus = tf.config.list_physical_devices("GPU")
  if not gpus:
    print("gpu_check: skipped: no GPU on this machine.")
    return
  start = time.perf_counter()
  from tf_vmfvae import export_lib  # pylint: disable=g-import-not-at-top
  from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
  from tf_vmfvae import train  # pylint: disable=g-import-not-at-top
  import tensorflow_text  # pylint: disable=g-import-not-at-top,unused-import

  roofline = common.matmul_gflops(4096, 4096, 4096)
  print(f"tf {tf.__version__} on {runs.format_machine(runs.describe_machine())}; "
        f"fp32 matmul 4096^2 {roofline:.0f} GFLOP/s", flush=True)
  if not check_cudnn_lstm():
    fail("the LSTM does not take the cuDNN kernel (no CudnnRNN op in its graph)")
  print("cuDNN LSTM: yes", flush=True)

  experiment = train.experiment_from_args(f"--flagfile={ROOT / 'configs' / 'ptb.flags'}")
  experiment = dataclasses.replace(experiment, train=dataclasses.replace(
      experiment.train, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch))
  output = pathlib.Path(args.output_dir or tempfile.mkdtemp(prefix="gpu_check_"))
  model_dir = output / "run"
  train_and_report(experiment, model_dir, "as shipped", roofline)
  # XLA compiles once per batch shape: buckets 5 wide keep them few.
  xla = dataclasses.replace(
      experiment, model={**experiment.model, "sampler": "table"},
      data=dataclasses.replace(experiment.data, bucket_width=5),
      train=dataclasses.replace(experiment.train, jit_compile=True))
  train_and_report(xla, output / "run_xla", "--jit_compile --sampler=table --bucket_width=5",
                   roofline)

  try:
    version = export_lib.export(model_dir, output / "export")
    score = tf.saved_model.load(str(version)).signatures["score"]
    result = score(sentences=tf.constant(["the market fell sharply"]))
  except Exception as error:  # pylint: disable=broad-except
    fail(f"export and reload: {type(error).__name__}: {error}")
  nll = result.get("nll")
  if nll is None or not bool(tf.reduce_all(tf.math.is_finite(nll))):
    fail(f"the reloaded SavedModel's score is not a finite NLL: {result}")
  print(f"export: {version} reloaded; score of one sentence: NLL {float(nll[0]):.2f}")
  print(f"gpu_check: passed in {time.perf_counter() - start:.0f} s "
        f"({args.epochs} epochs a run; runs and export in {output})")


if __name__ == "__main__":
  main()
