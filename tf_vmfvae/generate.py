r"""Generates sentences with a trained NVRNN.

Usage:
  python -m tf_vmfvae.generate --model_dir=runs/ptb_vmf sample --num_samples=5
  python -m tf_vmfvae.generate --model_dir=runs/ptb_vmf reconstruct \
      --sentences="the company said it will buy shares" --decoder=beam
  python -m tf_vmfvae.generate --model_dir=runs/ptb_vmf interpolate \
      --sentence_a="stocks fell" --sentence_b="the company said" --steps=5

`reconstruct` reads sentences from standard input, one per line, when no
--sentences flag is given.
"""

import sys

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from tf_vmfvae import cli  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  cli.quiet_native_logs()  # Before TensorFlow is imported.


COMMANDS = ("sample", "reconstruct", "interpolate")

_MODEL_DIR = flags.DEFINE_string("model_dir", None, "A trained NVRNN model directory.")
_DECODER = flags.DEFINE_enum("decoder", "greedy", ["greedy", "beam", "sample"], "Decoder.")
_BEAM_WIDTH = flags.DEFINE_integer("beam_width", 5, "Beams of --decoder=beam.")
_TEMPERATURE = flags.DEFINE_float("temperature", 1.0, "Temperature of --decoder=sample.")
_MAX_LENGTH = flags.DEFINE_integer("max_length", 50, "Longest sentence, in tokens.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 5, "sample: how many sentences.")
_SENTENCES = flags.DEFINE_multi_string("sentences", None, "reconstruct: input sentences.")
_SENTENCE_A = flags.DEFINE_string("sentence_a", None, "interpolate: the start.")
_SENTENCE_B = flags.DEFINE_string("sentence_b", None, "interpolate: the end.")
_STEPS = flags.DEFINE_integer("steps", 5, "interpolate: points on the path.")
_LABEL = flags.DEFINE_integer("label", None, "Label of a label-conditioned model.")

flags.mark_flag_as_required("model_dir")


def main(argv):
  if len(argv) != 2 or argv[1] not in COMMANDS:
    raise app.UsageError(f"Give one command: {' | '.join(COMMANDS)}.")
  from tf_vmfvae import generate_lib  # pylint: disable=g-import-not-at-top
  generator = generate_lib.Generator(
      _MODEL_DIR.value, max_length=_MAX_LENGTH.value, beam_width=_BEAM_WIDTH.value,
      temperature=_TEMPERATURE.value, seed=_SEED.value)
  command, method, label = argv[1], _DECODER.value, _LABEL.value
  if command == "sample":
    for i, sentence in enumerate(generator.sample(_NUM_SAMPLES.value, method, label), 1):
      print(f"{i:3d}. {sentence}")
  elif command == "reconstruct":
    sentences = _SENTENCES.value or [line.strip() for line in sys.stdin if line.strip()]
    for source, output in zip(sentences, generator.reconstruct(sentences, method, label)):
      print(f"  in:  {source}\n  out: {output}")
  else:
    if not (_SENTENCE_A.value and _SENTENCE_B.value):
      raise app.UsageError("interpolate needs --sentence_a and --sentence_b.")
    path = generator.interpolate(_SENTENCE_A.value, _SENTENCE_B.value, _STEPS.value, method,
                                 label)
    for i, sentence in enumerate(path):
      print(f"  {i / max(len(path) - 1, 1):4.2f}  {sentence}")


if __name__ == "__main__":
  cli.run(main)
