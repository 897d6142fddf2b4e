"""The run directory's listing: what each run reached and how to resume it."""

import os
import pathlib
import subprocess
import sys

from tf_vmfvae import config
from tf_vmfvae import runs

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _run(root, name, epochs_done, finished=False):
  model_dir = root / name
  model_dir.mkdir(parents=True)
  config.ExperimentConfig(model={"latent": "vmf"}, train=config.TrainConfig(epochs=40)).save(
      model_dir / runs.CONFIG_FILE)
  runs.atomic_write_json(model_dir / runs.STATE_FILE, {
      "epoch": epochs_done, "best_epoch": epochs_done - 1, "best_val_nll": 106.5203,
      "learning_rate": 0.000125, "train_seconds": 8234.4, "stopped": None,
      # One epoch paused mid-way (234 tokens/s) must not be what the listing shows.
      "history": [{"epoch": e, "train_tokens_per_second": 234.0 if e == epochs_done else
                   5733.2 + e} for e in range(1, epochs_done + 1)],
      "machines": [{"from_epoch": 0, "cpu": "Old CPU", "cpus": 8, "num_threads": 0,
                    "gpus": []},
                   {"from_epoch": 2, "cpu": "AMD EPYC", "simd": ["avx2"], "cpus": 2,
                    "num_threads": 1, "gpus": []}]})
  if finished:
    runs.atomic_write_json(model_dir / runs.METRICS_FILE, {})
  return model_dir


def test_list_and_format_runs(tmp_path):
  _run(tmp_path, "ptb_vmf", 29)
  _run(tmp_path, "nested/done", 12, finished=True)
  listed = runs.list_runs(tmp_path)
  assert [r["model_dir"] for r in listed] == [str(tmp_path / "nested/done"),
                                               str(tmp_path / "ptb_vmf")]
  assert (listed[1]["epochs"], listed[1]["epoch_budget"], listed[1]["best_epoch"],
          listed[1]["finished"], listed[0]["finished"]) == (29, 40, 28, False, True)
  table = runs.format_runs(listed).splitlines()
  assert table[0].split()[:3] == ["run", "model", "epoch"]
  row = table[2].split()
  assert row[:5] == [str(tmp_path / "ptb_vmf"), "nvrnn/ptb/vmf", "29/40", "106.52", "(28)"]
  # The median of 5734.2 ... 5761.2 and one 234.
  assert "2.29 h" in table[2] and "5747" in table[2] and "234" not in table[2]
  assert table[2].endswith("resumable  AMD EPYC (avx2) x2 (1 thread)")
  assert "finished" in table[1]
  # Only the unfinished run gets a resume command.
  assert table[3:] == [f"resume: python -m tf_vmfvae.train "
                       f"--flagfile={tmp_path / 'ptb_vmf' / runs.FLAGS_FILE}"]


def test_the_runs_binary_lists_a_root_and_refuses_a_missing_one(tmp_path):
  _run(tmp_path, "a", 3)
  command = [sys.executable, "-m", "tf_vmfvae.runs"]
  env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
  listed = subprocess.run(command + [str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
  assert listed.returncode == 0, listed.stderr
  assert "3/40" in listed.stdout and "resume:" in listed.stdout
  missing = subprocess.run(command + [str(tmp_path / "nope")], cwd=ROOT, capture_output=True,
                           text=True, timeout=300, env=env)
  assert missing.returncode == 1 and "is not a directory" in missing.stderr
  assert "Traceback" not in missing.stderr


def test_partial_files_of_a_killed_writer_are_removed(tmp_path):
  (tmp_path / "checkpoints").mkdir()
  (tmp_path / "checkpoints" / f"epoch-002.keras{runs.TMP_SUFFIX}.keras").write_text("half")
  runs.atomic_write_json(tmp_path / runs.STATE_FILE, {"epoch": 1})
  (tmp_path / f"state.json{runs.TMP_SUFFIX}").write_text("{")  # Killed mid-write.
  assert sorted(runs.remove_partial_files(tmp_path)) == [
      f"epoch-002.keras{runs.TMP_SUFFIX}.keras", f"state.json{runs.TMP_SUFFIX}"]
  assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [runs.STATE_FILE]
  assert runs.load_state(tmp_path) == {"epoch": 1}


def test_machine_description_is_what_this_process_runs_on():
  machine = runs.describe_machine()
  assert machine["cpu"] and machine["cpus"] == len(os.sched_getaffinity(0))
  assert machine["num_threads"] >= 0 and isinstance(machine["gpus"], list)
  assert set(machine["simd"]) <= set(runs.SIMD_FEATURES)
  gpu = runs.format_machine({"cpu": "X", "cpus": 16, "num_threads": 0, "gpus": ["H200"]})
  assert gpu == "X x16 + H200"
