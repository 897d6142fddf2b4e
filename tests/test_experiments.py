"""The paper's experiments at --scale=small: they run end to end and their
outputs hold the properties the paper claims where those hold by construction."""

import csv
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tf_vmfvae.experiments import common
from tf_vmfvae.experiments import kl_geometry

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def geometry(tmp_path_factory):
  output_dir = tmp_path_factory.mktemp("kl_geometry")
  kl_geometry.run(output_dir, "small")
  with open(output_dir / "kl_geometry.csv") as f:
    rows = [{k: (v if k == "distribution" else float(v)) for k, v in row.items()}
            for row in csv.DictReader(f)]
  return output_dir, rows


def test_kl_geometry_writes_its_csv_and_figure(geometry):
  output_dir, rows = geometry
  assert len(rows) == 2 * len(kl_geometry.DIMS) * len(kl_geometry.SETTINGS["small"][0])
  assert (output_dir / "kl_geometry.png").stat().st_size > 10_000


def test_kl_and_cosine_grow_with_kappa(geometry):
  _, rows = geometry
  for distribution in ("vmf", "power_spherical"):
    for dim in kl_geometry.DIMS:
      points = [r for r in rows if r["distribution"] == distribution and r["dim"] == dim]
      assert np.all(np.diff([r["kl"] for r in points]) > 0)
      assert np.all(np.diff([r["mean_cosine"] for r in points]) > 0)
  # Fig. 3: a larger d needs a larger kappa for the same spread.
  vmf50 = [r["mean_cosine"] for r in rows if r["distribution"] == "vmf" and r["dim"] == 50]
  vmf100 = [r["mean_cosine"] for r in rows if r["distribution"] == "vmf" and r["dim"] == 100]
  assert np.all(np.asarray(vmf50) > np.asarray(vmf100))


def test_sampled_cosines_agree_with_the_closed_forms(geometry):
  """Within 4 standard errors each (32 comparisons: at 3 SE one would fail
  by chance 8 % of the time), and unbiased on average."""
  _, rows = geometry
  z = np.array([(r["sampled_mean_cosine"] - r["mean_cosine"]) / r["sampled_standard_error"]
                for r in rows])
  assert np.all(np.abs(z) < 4.0), z
  assert abs(z.mean()) < 3.0 / np.sqrt(len(z))


def test_the_binary_refuses_a_bad_scale_and_needs_an_output_dir(tmp_path):
  with pytest.raises(ValueError, match="`scale` must be one of"):
    kl_geometry.run(tmp_path, "huge")
  run = subprocess.run([sys.executable, "-m", "tf_vmfvae.experiments.kl_geometry"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  assert run.returncode == 1 and "output_dir" in run.stderr
  assert common.SCALES == ("small", "full")
