"""Where the trainer's step spends its time: TensorFlow's profiler, summed by op.

Usage:
  TF_VMFVAE_DATA_DIR=../shared/data python bench/step_profile.py [--config ptb:32]
      [--num_threads 1] [--steps 30] [--top 12]

Runs the trainer's own step (`common.time_training_steps`: model, optimizer,
batches and `Model.fit` as `train_lib` builds them) with the profiler on for
the timed steps, then splits the wall time of a step into: the kernels'
self time summed by op type (the matmuls also one by one, with their share
of the step), and what is left, the framework's own time between kernels
(executor, `fit`, input pipeline). Prints the 1-thread and all-thread
2048^2 matmul rooflines measured in the same run. Prints measured figures
only; asserts nothing.
"""

import argparse
import collections
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # pylint: disable=g-import-not-at-top,wrong-import-position
import throughput  # pylint: disable=g-import-not-at-top,wrong-import-position

import keras  # pylint: disable=g-import-not-at-top,wrong-import-order
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-order
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-import-not-at-top,wrong-import-order

from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top


class _Profile(keras.callbacks.Callback):
  """The profiler on from the end of batch `warmup` to the end of training."""

  def __init__(self, warmup, logdir):
    super().__init__()
    self.warmup, self.logdir = warmup, logdir

  def on_train_batch_end(self, batch, logs=None):
    if batch == self.warmup - 1:
      float(logs["loss"])
      tf.profiler.experimental.start(self.logdir)

  def on_train_end(self, logs=None):
    tf.profiler.experimental.stop()


def kernel_self_times(logdir):
  """{kernel event name "op_name:OpType": self time in seconds} on the host."""
  path = sorted(pathlib.Path(logdir).glob("plugins/profile/*/*.xplane.pb"))[-1]
  space = xplane_pb2.XSpace()
  space.ParseFromString(path.read_bytes())
  plane = next(p for p in space.planes if p.name == "/host:CPU")
  totals = collections.Counter()
  for line in plane.lines:
    events = sorted((e.offset_ps, e.duration_ps, plane.event_metadata[e.metadata_id].name)
                    for e in line.events)
    stack = []  # [start, duration, name, self time] of the open kernel events.
    for start, duration, name in events:
      # Kernels are "op_name:OpType"; the runtime's own events ("Executor::Run",
      # "ThreadpoolListener::Record", ...) and function calls ("...:
      # __inference_...", which enclose kernels) are not.
      if (":" not in name or "::" in name
          or name.rsplit(":", 1)[1].startswith((" ", "__"))):
        continue
      while stack and stack[-1][0] + stack[-1][1] <= start:
        _, _, done, own = stack.pop()
        totals[done] += own
      if stack:
        stack[-1][3] -= duration
      stack.append([start, duration, name, duration])
    for _, _, done, own in stack:
      totals[done] += own
  return {name: ps / 1e12 for name, ps in totals.items()}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="ptb:32", help="flagfile:batch_size.")
  parser.add_argument("--num_threads", type=int, default=1,
                      help="TensorFlow threads (0: all cores); 1, as each run of the grid.")
  parser.add_argument("--steps", type=int, default=30, help="Profiled steps.")
  parser.add_argument("--top", type=int, default=12, help="Op types and matmuls listed.")
  args = parser.parse_args()

  runs.set_num_threads(args.num_threads)
  one_thread = common.matmul_gflops(2048, 2048, 2048)
  print(f"tf {tf.__version__} on {runs.format_machine(runs.describe_machine())}, "
        f"{args.num_threads or 'all'} thread(s). Roofline: fp32 matmul 2048^2 "
        f"{one_thread:.0f} GFLOP/s.", flush=True)
  name, batch_size = args.config.split(":")
  splits = runs.load_data(throughput.experiment_from_flagfile("ptb"), splits=["train"])
  experiment = throughput.experiment_from_flagfile(name, batch_size=int(batch_size))
  logdir = tempfile.mkdtemp(prefix="step_profile_")
  result = common.time_training_steps(experiment, splits, steps=args.steps,
                                      callbacks=[_Profile(10, logdir)])
  step = result["seconds"] / result["steps"]
  times = kernel_self_times(logdir)
  per_type = collections.Counter()
  for kernel, seconds in times.items():
    per_type[kernel.rsplit(":", 1)[1]] += seconds / result["steps"]
  kernels = sum(per_type.values())
  flops = common.nvrnn_flops_per_token(result["model"]) * result["tokens"] / result["steps"]
  print(f"{name}.flags batch {batch_size}: {step * 1e3:.1f} ms a step "
        f"({result['tokens'] / result['seconds']:.0f} tokens/s, profiler on), "
        f"{flops / 1e9:.2f} GFLOP of matmuls a step on the non-padding tokens")
  matmuls = sum(t for op, t in per_type.items() if "MatMul" in op)
  print(f"  matmul kernels  {matmuls * 1e3:7.1f} ms  {matmuls / step:6.1%}  "
        f"({flops / matmuls / 1e9:.0f} GFLOP/s counted on non-padding tokens)")
  print(f"  other kernels   {(kernels - matmuls) * 1e3:7.1f} ms  "
        f"{(kernels - matmuls) / step:6.1%}")
  print(f"  between kernels {(step - kernels) * 1e3:7.1f} ms  {(step - kernels) / step:6.1%}  "
        f"(executor, fit, input pipeline)")
  print("op types (self time a step):")
  for op, seconds in per_type.most_common(args.top):
    print(f"  {op:28s} {seconds * 1e3:7.2f} ms  {seconds / step:6.1%}")
  print("matmuls (self time a step, all calls of the op):")
  ranked = sorted(((t, k) for k, t in times.items() if "MatMul" in k.rsplit(":", 1)[1]),
                  reverse=True)
  for seconds, kernel in ranked[:args.top]:
    print(f"  {seconds / result['steps'] * 1e3:7.2f} ms  {kernel.rsplit(':', 1)[0][-90:]}")


if __name__ == "__main__":
  main()
