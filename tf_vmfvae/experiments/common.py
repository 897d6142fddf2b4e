"""What the experiment binaries share: their flags, CSV output, figures."""

import csv
import pathlib

SCALES = ("small", "full")


def write_csv(path, rows):
  """Writes a list of dicts (same keys) as CSV; returns the path."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  return path


def pyplot():
  """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def check_scale(scale):
  if scale not in SCALES:
    raise ValueError(f"`scale` must be one of {list(SCALES)}, got {scale!r}.")


def main_for(run):
  """Runs `run(output_dir, scale)` as an absl binary with one-line user errors."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from tf_vmfvae import cli  # pylint: disable=g-import-not-at-top
  output_dir = flags.DEFINE_string("output_dir", None, "Where the CSV and PNG go.")
  scale = flags.DEFINE_enum("scale", "small", list(SCALES),
                            "small: minutes on a CPU; full: the paper's setting.")
  flags.mark_flag_as_required("output_dir")

  def main(argv):
    del argv
    run(output_dir.value, scale.value)

  cli.run(main)
