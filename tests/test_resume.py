"""`kill -9` at any moment of training leaves a run that resumes on the same
command, with its best model and history as an uninterrupted run's."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from tf_vmfvae import runs

from corpora import write_sentence_corpus  # pylint: disable=g-bad-import-order

ROOT = pathlib.Path(__file__).resolve().parent.parent
EPOCHS = 4


def _command(data, model_dir):
  return [sys.executable, "-m", "tf_vmfvae.train", "--flagfile=configs/smoke.flags",
          f"--data_dir={data}", f"--model_dir={model_dir}", f"--epochs={EPOCHS}",
          "--steps_per_epoch=3", "--num_threads=1", "--verbose=0"]


def _env():
  return {**os.environ, "CUDA_VISIBLE_DEVICES": ""}


def _history(model_dir):
  return [(h["epoch"], h["val_nll"], h["loss"]) for h in runs.load_state(model_dir)["history"]]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  root = tmp_path_factory.mktemp("resume")
  data = write_sentence_corpus(root / "data")
  start = time.perf_counter()
  run = subprocess.run(_command(data, root / "whole"), cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr[-3000:]
  return data, root / "whole", time.perf_counter() - start


@pytest.mark.parametrize("fraction", [0.5, 0.7, 0.85])
def test_kill_9_then_the_same_command_resumes_to_the_same_history(uninterrupted, tmp_path,
                                                                   fraction):
  data, whole, seconds = uninterrupted
  model_dir = tmp_path / "run"
  process = subprocess.Popen(_command(data, model_dir), cwd=ROOT, env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  time.sleep(seconds * fraction)
  os.kill(process.pid, signal.SIGKILL)
  process.wait()
  killed_at = (runs.load_state(model_dir) or {}).get("epoch", 0)
  resumed = subprocess.run(_command(data, model_dir), cwd=ROOT, env=_env(),
                           capture_output=True, text=True, timeout=600)
  assert resumed.returncode == 0, (killed_at, resumed.stderr[-3000:])
  got, expected = _history(model_dir), _history(whole)
  assert [h[0] for h in got] == list(range(1, EPOCHS + 1))
  # Equal to 0.2 %, not bitwise: after a resume the random draws are not
  # exactly the uninterrupted run's (measured: 1e-4 relative by epoch 3).
  for (epoch, val_nll, loss), (_, want_val, want_loss) in zip(got, expected):
    assert val_nll == pytest.approx(want_val, rel=2e-3), (killed_at, epoch)
    assert loss == pytest.approx(want_loss, rel=2e-3), (killed_at, epoch)
  state = runs.load_state(model_dir)
  assert state["best_epoch"] == runs.load_state(whole)["best_epoch"]
  assert (model_dir / runs.BEST_MODEL).is_file()
  assert not [p for p in model_dir.rglob("*") if ".tmp" in p.name], "a temporary file was left"
  assert json.loads((model_dir / runs.METRICS_FILE).read_text())["epochs"] == EPOCHS
