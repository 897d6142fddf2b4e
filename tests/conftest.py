"""Test setup: data location, two logical CPUs for `MirroredStrategy`, tiers.

Logical devices must be configured before TensorFlow initializes its
runtime, hence at import time of this conftest, before any test runs.

Tiers: `python -m pytest` runs everything (CI); `python -m pytest -m "not
slow"` is the fast tier for development (minutes). What is slow is said
here only, by file (`SLOW_FILES`) and, inside files that are otherwise
fast, by test name (`SLOW_TESTS`): trainings in subprocesses, notebooks,
the experiments, multi-worker clusters, serving under load, kill tests.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests read the real corpora from ../shared/data unless told otherwise.
_SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
if os.path.isdir(_SHARED_DATA):
  os.environ.setdefault("TF_VMFVAE_DATA_DIR", os.path.abspath(_SHARED_DATA))
# Absolute, so tests that run in another folder (notebooks, subprocesses) find it.
if os.environ.get("TF_VMFVAE_DATA_DIR"):
  os.environ["TF_VMFVAE_DATA_DIR"] = os.path.abspath(os.environ["TF_VMFVAE_DATA_DIR"])
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # pylint: disable=g-import-not-at-top

_CPUS = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _CPUS[0], [tf.config.LogicalDeviceConfiguration()] * 2)

import pytest  # pylint: disable=g-import-not-at-top,g-bad-import-order


@pytest.fixture(scope="session")
def mirrored_strategy():
  """One MirroredStrategy over the 2 logical CPUs for the whole session.

  Several MirroredStrategy objects in one process reuse collective instance
  keys and abort with "Shape mismatch in the collective instance"; sharing
  one avoids that.
  """
  return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


# Whole files of slow tests.
SLOW_FILES = frozenset({
    "test_cli.py",            # every binary in a subprocess
    "test_experiments.py",    # 27 tiny trainings
    "test_export_variants.py",  # every conditioned and Gaussian variant exported
    "test_multi_worker.py",   # local clusters of processes
    "test_notebooks.py",      # the Colab notebooks, top to bottom
    "test_resume.py",         # kill -9 during training
    "test_serving_load.py",   # a model server under load
    "test_train.py",          # the trainer end to end on PTB
})
# Slow tests inside otherwise fast files, "file::name prefix": binaries and
# SavedModels run in subprocesses (the in-process tests of the same code stay
# in the fast tier).
SLOW_TESTS = (
    "test_export.py::test_saved_model_cli_runs_every_signature",
    "test_export.py::test_generate_cli_prints_readable_output",
    "test_export.py::test_every_signature_in_a_fresh_process",
    "test_export.py::test_nvdm_signatures_in_a_fresh_process",
    "test_nvdm.py::test_smoke_nvdm_flags_train_then_evaluate",
    "test_nvdm.py::test_topics_cli_prints_readable_topics",
    "test_train_lib.py::test_label_conditioned_training_on_a_yelp_fixture",
    "test_train_lib.py::test_an_xla_training_matches_the_default_one",  # XLA compiles
)


def pytest_collection_modifyitems(config, items):
  del config
  for item in items:
    name = item.path.name
    if name in SLOW_FILES or any(
        f"{name}::{item.name}".startswith(prefix) for prefix in SLOW_TESTS):
      item.add_marker(pytest.mark.slow)
