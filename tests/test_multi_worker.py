"""Two worker processes on localhost under MultiWorkerMirroredStrategy:
identical weights, the loss of a one-worker run on the same global batch,
only the chief writes, and a lost worker ends the other with one line."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tf_vmfvae import runs

from corpora import write_sentence_corpus as _corpus  # pylint: disable=g-bad-import-order

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Trains like `python -m tf_vmfvae.train`, then saves this worker's weights.
_DRIVER = r"""
import sys
import numpy as np
from absl import flags
from tf_vmfvae import train, train_lib
import keras
flags.FLAGS(["train", *sys.argv[2:]])
weights_path = sys.argv[1]

class SaveWeights(keras.callbacks.Callback):
  def on_train_end(self, logs=None):
    np.save(weights_path, np.concatenate([w.ravel() for w in self.model.get_weights()]))

experiment = train.experiment_from_flags()
train_lib.train(experiment, flags.FLAGS.model_dir, strategy=train_lib.make_strategy("auto"),
                verbose=2, callbacks=[SaveWeights()])
"""
FLAGS = ["--flagfile=configs/smoke.flags", "--num_threads=1", "--steps_per_epoch=3"]


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start(command, out, tf_config=None):
  env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
  env["CUDA_VISIBLE_DEVICES"] = ""
  if tf_config:
    env["TF_CONFIG"] = json.dumps(tf_config)
  return subprocess.Popen(command, cwd=ROOT, env=env, stdout=open(out, "w"),
                          stderr=subprocess.STDOUT, text=True)


def _cluster(num_workers):
  workers = [f"127.0.0.1:{_free_port()}" for _ in range(num_workers)]
  return [{"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
          for i in range(num_workers)]


def _wait(process, out, timeout=600):
  code = process.wait(timeout=timeout)
  assert code == 0, pathlib.Path(out).read_text()[-3000:]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
  root = tmp_path_factory.mktemp("multi_worker")
  data = _corpus(root / "data")
  flags = [*FLAGS, f"--data_dir={data}", "--epochs=1"]
  processes = []
  for i, tf_config in enumerate(_cluster(2)):
    command = [sys.executable, "-c", _DRIVER, str(root / f"weights{i}.npy"), *flags,
               f"--model_dir={root / f'run{i}'}"]
    processes.append((_start(command, root / f"worker{i}.log", tf_config),
                      root / f"worker{i}.log"))
  single = _start([sys.executable, "-c", _DRIVER, str(root / "weights_single.npy"), *flags,
                   f"--model_dir={root / 'single'}", "--strategy=one_device"],
                  root / "single.log")
  for process, out in processes + [(single, root / "single.log")]:
    _wait(process, out)
  return root


def test_both_workers_end_with_identical_weights(two_workers):
  chief, other = (np.load(two_workers / f"weights{i}.npy") for i in range(2))
  np.testing.assert_array_equal(chief, other)


def test_only_the_chief_writes_the_model_directory(two_workers):
  chief = two_workers / "run0"
  for name in (runs.CONFIG_FILE, runs.VOCAB_FILE, runs.STATE_FILE, runs.BEST_MODEL,
               runs.LOGS_DIR, runs.checkpoint_name(1)):
    assert (chief / name).exists(), name
  assert not (two_workers / "run1").exists()  # Worker 1 trained (its weights) but wrote nothing.


def test_the_loss_matches_one_worker_on_the_same_global_batch(two_workers):
  two = runs.load_state(two_workers / "run0")["history"][0]
  one = runs.load_state(two_workers / "single")["history"][0]
  # Same model, seed and global batch of 32 (2 x 16 against 1 x 32); the
  # draws of dropout and z differ per replica, so equal to a tolerance.
  assert two["loss"] == pytest.approx(one["loss"], rel=0.02)
  assert two["val_nll"] == pytest.approx(one["val_nll"], rel=0.02)


def test_a_lost_worker_ends_the_other_with_one_line(tmp_path):
  data = _corpus(tmp_path / "data")
  processes = []
  for i, tf_config in enumerate(_cluster(2)):
    command = [sys.executable, "-m", "tf_vmfvae.train", *FLAGS, f"--data_dir={data}",
               "--epochs=100", f"--model_dir={tmp_path / f'run{i}'}", "--verbose=2"]
    processes.append(_start(command, tmp_path / f"worker{i}.log", tf_config))
  log = tmp_path / "worker0.log"
  deadline = time.time() + 300
  while "epoch 2:" not in log.read_text():
    assert time.time() < deadline and processes[0].poll() is None, log.read_text()[-3000:]
    time.sleep(0.5)
  processes[1].kill()
  start = time.time()
  try:
    code = processes[0].wait(timeout=180)
  finally:
    processes[0].kill()
  assert code == 1 and time.time() - start < 180
  text = log.read_text()
  assert "error: A worker of the cluster stopped during epoch" in text
  assert "Traceback" not in text
  # The chief's run resumes from its last completed epoch.
  assert runs.load_state(tmp_path / "run0")["epoch"] >= 2
