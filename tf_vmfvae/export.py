r"""Exports a trained model as a SavedModel for TF Serving.

Usage:
  python -m tf_vmfvae.export --model_dir=runs/ptb_vmf --export_dir=exports/ptb_vmf

Writes <export_dir>/<version>/ (the next integer), the layout TF Serving
watches; prints the signatures.
"""


from absl import flags  # pylint: disable=g-import-not-at-top

from tf_vmfvae import cli  # pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  cli.quiet_native_logs()  # Before TensorFlow is imported.


_MODEL_DIR = flags.DEFINE_string("model_dir", None, "A trained model directory.")
_EXPORT_DIR = flags.DEFINE_string("export_dir", None, "Base directory of the versions.")
_MAX_LENGTH = flags.DEFINE_integer("max_length", 50, "Longest generated sentence.")

flags.mark_flags_as_required(["model_dir", "export_dir"])


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_vmfvae import export_lib  # pylint: disable=g-import-not-at-top
  path = export_lib.export(_MODEL_DIR.value, _EXPORT_DIR.value, max_length=_MAX_LENGTH.value)
  loaded = tf.saved_model.load(str(path))
  print(f"Exported {path}")
  for name, fn in sorted(loaded.signatures.items()):
    inputs = ", ".join(f"{k}: {v.dtype.name}{v.shape}" for k, v in
                       sorted(fn.structured_input_signature[1].items()))
    print(f"  {name}({inputs})")


if __name__ == "__main__":
  cli.run(main)
