"""Every binary ends a user's mistake with one line on stderr and exit status 1,
never a traceback. Runs the binaries as subprocesses on corpora written here
(no ../shared data needed)."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tf_vmfvae import cli

from corpora import write_sentence_corpus as _corpus  # pylint: disable=g-bad-import-order

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _binary(module, *args, ok=False):
  env = {k: v for k, v in os.environ.items() if k != cli.TRACEBACK_ENV_VAR}
  env["CUDA_VISIBLE_DEVICES"] = ""
  run = subprocess.run([sys.executable, "-m", f"tf_vmfvae.{module}", *map(str, args)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
  if ok:
    assert run.returncode == 0, run.stderr[-3000:]
    return run
  assert run.returncode == 1, (run.returncode, run.stderr[-3000:])
  assert "Traceback" not in run.stderr, run.stderr[-3000:]
  return run


def _error_line(run):
  """The one line of the error: the last line of stderr, starting with "error: "."""
  last = run.stderr.strip().splitlines()[-1]
  assert last.startswith("error: "), run.stderr[-2000:]
  return last


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A tiny model trained on a corpus written here: (data folder, model dir)."""
  root = tmp_path_factory.mktemp("cli")
  data = _corpus(root / "data")
  model_dir = root / "run"
  _binary("train", "--flagfile=configs/smoke.flags", f"--data_dir={data}",
          f"--model_dir={model_dir}", "--epochs=1", "--steps_per_epoch=2", ok=True)
  return data, model_dir


def test_missing_and_empty_data_folders(tmp_path):
  for folder in (tmp_path / "missing", tmp_path):
    line = _error_line(_binary("train", "--flagfile=configs/smoke.flags",
                               f"--data_dir={folder}", f"--model_dir={tmp_path / 'run'}"))
    assert f"--data_dir={folder} does not hold the ptb files" in line


def test_a_file_that_is_not_utf8_names_file_and_line(tmp_path):
  data = _corpus(tmp_path / "data")
  (data / "train.txt").write_bytes(b"good line here\nbad \xff\xfe bytes\n")
  line = _error_line(_binary("train", "--flagfile=configs/smoke.flags", f"--data_dir={data}",
                             f"--model_dir={tmp_path / 'run'}"))
  assert f"{data / 'train.txt'}:2: not valid UTF-8" in line


def test_an_empty_training_split(tmp_path):
  data = _corpus(tmp_path / "data")
  (data / "train.txt").write_text("one\n\n", encoding="utf-8")
  line = _error_line(_binary("train", "--flagfile=configs/smoke.flags", f"--data_dir={data}",
                             f"--model_dir={tmp_path / 'run'}"))
  assert f"{data / 'train.txt'}: no sentence of at least 2 words" in line


@pytest.mark.parametrize("flag,message", [
    ("--hidden_dim=-1", "flag --hidden_dim=-1: -1 is not a positive integer"),
    ("--kappa=0", "flag --kappa=0.0: must be > 0"),
    ("--batch_size=0", "flag --batch_size=0: 0 is not a positive integer"),
    ("--dropout=1", "flag --dropout=1.0: must be in [0, 1)"),
])
def test_a_value_the_flag_rules_out_is_refused_while_parsing_naming_the_flag(
    tmp_path, flag, message):
  data = _corpus(tmp_path / "data")
  run = _binary("train", "--flagfile=configs/smoke.flags", f"--data_dir={data}",
                f"--model_dir={tmp_path / 'run'}", flag)
  assert message in run.stderr
  assert not (tmp_path / "run").exists()


def test_a_combination_of_flags_is_one_line_naming_them(tmp_path):
  data = _corpus(tmp_path / "data")
  line = _error_line(_binary("train", "--flagfile=configs/smoke.flags", f"--data_dir={data}",
                             f"--model_dir={tmp_path / 'run'}", "--kl_nats=3"))
  assert "Give --kappa or --kl_nats, not both." in line  # smoke.flags sets --kappa.


def test_an_unknown_dataset_is_absls_usage_error(tmp_path):
  run = _binary("train", "--flagfile=configs/smoke.flags", "--dataset=imdb",
                f"--model_dir={tmp_path / 'run'}")
  assert "flag --dataset=imdb: value should be one of" in run.stderr


@pytest.mark.parametrize("module,args", [
    ("evaluate", []), ("export", ["--export_dir=EXPORTS"]), ("generate", ["sample"]),
    ("topics", []),
])
def test_a_model_dir_with_no_trained_model(tmp_path, module, args):
  args = [a.replace("EXPORTS", str(tmp_path / "exports")) for a in args]
  run = _binary(module, f"--model_dir={tmp_path}", *args)
  line = _error_line(run)
  assert f"No trained model in {tmp_path}" in line
  # TensorFlow was imported, yet its start-up chatter is not shown.
  assert run.stderr.strip().splitlines() == [line]


def test_tensorflows_start_up_lines_come_back_with_verbosity(tmp_path):
  run = _binary("evaluate", f"--model_dir={tmp_path}", "--verbosity=1")
  assert len(run.stderr.strip().splitlines()) > 1


def test_a_resume_under_another_config_is_refused(trained):
  data, model_dir = trained
  flags_before = (model_dir / "flags.txt").read_text()
  line = _error_line(_binary("train", "--flagfile=configs/smoke.flags", f"--data_dir={data}",
                             f"--model_dir={model_dir}", "--epochs=1", "--steps_per_epoch=2",
                             "--kappa=3"))
  assert f"{model_dir} holds a run with another configuration" in line
  assert "model.concentration: 30.0 -> 3.0" in line  # It names what differs.
  assert (model_dir / "flags.txt").read_text() == flags_before


def test_a_bad_value_writes_nothing_and_the_corrected_command_then_trains(tmp_path):
  data = _corpus(tmp_path / "data")
  model_dir = tmp_path / "run"
  command = ("train", "--flagfile=configs/smoke.flags", f"--data_dir={data}",
             f"--model_dir={model_dir}", "--epochs=1", "--steps_per_epoch=2")
  line = _error_line(_binary(*command, "--lr_schedule=cosine", "--warmup_epochs=2"))
  assert "`warmup_epochs` must be in [0, epochs=1)" in line
  assert not model_dir.exists() or not any(model_dir.iterdir())
  _binary(*command, ok=True)
  assert (model_dir / "state.json").is_file()


@pytest.mark.parametrize("module,args", [("evaluate", []), ("generate", ["sample"])])
def test_a_run_without_its_vocabulary_is_one_line_not_a_rebuilt_vocabulary(
    trained, tmp_path, module, args):
  _, model_dir = trained
  copy = tmp_path / "run"
  shutil.copytree(model_dir, copy)
  (copy / "vocab.txt").unlink()
  line = _error_line(_binary(module, f"--model_dir={copy}", *args))
  assert f"{copy / 'vocab.txt'} is missing" in line


def test_an_export_dir_that_cannot_be_written(trained, tmp_path):
  _, model_dir = trained
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  for export_dir in (blocker, blocker / "exports"):
    line = _error_line(_binary("export", f"--model_dir={model_dir}",
                               f"--export_dir={export_dir}"))
    assert f"--export_dir={export_dir} cannot be used as a directory" in line


def test_an_evaluation_output_that_cannot_be_written_fails_before_evaluating(trained, tmp_path):
  _, model_dir = trained
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  run = _binary("evaluate", f"--model_dir={model_dir}", f"--output={blocker / 'x.json'}")
  assert "the folder of --output" in _error_line(run)
  assert "Importance-weighted" not in run.stderr  # It stopped before evaluating.


def test_a_label_for_a_model_without_labels(trained):
  _, model_dir = trained
  line = _error_line(_binary("generate", f"--model_dir={model_dir}", "sample", "--label=3"))
  assert "--label=3 is for a label-conditioned model" in line


def test_the_traceback_is_there_when_asked_for(tmp_path):
  env = {**os.environ, cli.TRACEBACK_ENV_VAR: "1", "CUDA_VISIBLE_DEVICES": ""}
  run = subprocess.run([sys.executable, "-m", "tf_vmfvae.evaluate", f"--model_dir={tmp_path}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
  assert run.returncode != 0 and "Traceback" in run.stderr and "NoTrainedModelError" in run.stderr


def test_the_trained_model_still_evaluates(trained, tmp_path):
  """The fixture's run is a working model: the errors above are not its fault."""
  _, model_dir = trained
  output = tmp_path / "eval.json"
  _binary("evaluate", f"--model_dir={model_dir}", "--num_importance_samples=2",
          "--max_batches=1", f"--output={output}", ok=True)
  assert json.loads(output.read_text())["examples"] > 0
