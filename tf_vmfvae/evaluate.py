r"""Evaluates a trained model: ELBO and importance-weighted NLL, PPL, MI, AU.

Usage:
  python -m tf_vmfvae.evaluate --model_dir=runs/ptb_vmf --split=test       # K=100
  python -m tf_vmfvae.evaluate --model_dir=runs/ptb_vmf --num_importance_samples=500

Prints a table and writes <model_dir>/eval_<split>.json.
"""

import logging
import os

from absl import flags  # pylint: disable=g-import-not-at-top

from tf_vmfvae import cli  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  cli.quiet_native_logs()  # Before TensorFlow is imported.


_MODEL_DIR = flags.DEFINE_string("model_dir", None, "A trained model directory.")
_SPLIT = flags.DEFINE_enum("split", "test", ["train", "valid", "test"], "Split to score.")
_NUM_IMPORTANCE_SAMPLES = flags.DEFINE_integer(
    "num_importance_samples", 20,
    "K of the importance-weighted NLL (0 skips it): 20 for a quick look, 500 for final "
    "numbers.", lower_bound=0)
_ELBO_SAMPLES = flags.DEFINE_integer("elbo_samples", 1, "ELBO passes to average.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 50, "Sentences per batch.")
_SAMPLE_CHUNK = flags.DEFINE_integer("sample_chunk", 50, "IW samples decoded together.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Override the run's data_dir.")
_CHECKPOINT = flags.DEFINE_enum("checkpoint", "best", ["best", "last"], "Which weights.")
_MAX_BATCHES = flags.DEFINE_integer("max_batches", None, "Only this many batches.")
_PAPER_ESTIMATOR_SAMPLES = flags.DEFINE_integer(
    "paper_estimator_samples", None,
    "n > 0 also reports the paper's protocol with n posterior draws (n=3 there): NVRNN "
    "decodes their mean and charges one KL (not a bound); NVDM averages the "
    "reconstruction over them. Default: the n the model trained with "
    "(--decode_mean_of / --reconstruction_draws) if > 1, else off.")
_NUM_THREADS = flags.DEFINE_integer(
    "num_threads", 0, "CPU threads for TensorFlow's thread pools (0: TF's default).")
_OUTPUT = flags.DEFINE_string("output", None, "JSON path; default model_dir/eval_<split>.json.")

flags.mark_flag_as_required("model_dir")


def main(argv):
  del argv
  logging.getLogger("tf_vmfvae").setLevel(logging.INFO)  # Progress lines.
  from tf_vmfvae import evaluate_lib  # pylint: disable=g-import-not-at-top
  from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
  runs.set_num_threads(_NUM_THREADS.value)
  output = _OUTPUT.value or runs.eval_path(_MODEL_DIR.value, _SPLIT.value)
  if _OUTPUT.value:  # Checked before a long evaluation, not after it.
    runs.ensure_writable_dir(os.path.dirname(os.path.abspath(output)),
                             "the folder of --output")
  metrics = evaluate_lib.evaluate(
      _MODEL_DIR.value, split=_SPLIT.value,
      num_importance_samples=_NUM_IMPORTANCE_SAMPLES.value,
      elbo_samples=_ELBO_SAMPLES.value, batch_size=_BATCH_SIZE.value,
      sample_chunk=_SAMPLE_CHUNK.value, data_dir=_DATA_DIR.value,
      checkpoint=_CHECKPOINT.value, max_batches=_MAX_BATCHES.value,
      paper_estimator_samples=_PAPER_ESTIMATOR_SAMPLES.value)
  print(evaluate_lib.format_table(metrics))
  runs.atomic_write_json(output, metrics)
  print(f"Wrote {output}")


if __name__ == "__main__":
  cli.run(main)
