"""Test setup: data location, and two logical CPUs for `MirroredStrategy`.

Logical devices must be configured before TensorFlow initializes its
runtime, hence at import time of this conftest, before any test runs.
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
