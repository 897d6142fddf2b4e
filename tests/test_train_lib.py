"""Trainer rules that need no corpus (they run where ../shared/data is absent):
plateau/early stopping, shuffle order per epoch, who writes under multi-worker
training, refused resumes, thread caps, validation seeds, a Yelp-format fixture."""

import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from tf_vmfvae import config
from tf_vmfvae import data
from tf_vmfvae import evaluate_lib
from tf_vmfvae import runs
from tf_vmfvae import train_lib
from tf_vmfvae.data import text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(module, *args):
  return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=600, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})


def _run_plateau(curve, **train):
  tc = config.TrainConfig(learning_rate=1.0, **train)
  state = {"epoch": 0, "best_val_nll": math.inf, "best_epoch": 0, "bad_epochs": 0,
           "learning_rate": 1.0, "stopped": None}
  rates = []
  for nll in curve:
    state["epoch"] += 1
    train_lib.apply_plateau_rule(state, nll, tc)
    rates.append(state["learning_rate"])
    if state["stopped"]:
      break
  return state, rates


def test_early_stopping_counts_consecutive_bad_epochs_only():
  # Bad epochs 2, 4 and 6 are each followed by an improvement: a run that
  # keeps improving must not stop, whatever the total of bad epochs.
  state, _ = _run_plateau([10, 11, 9, 9.5, 8, 8.5, 7, 6], lr_decay=1.0, max_bad_epochs=2)
  assert state["stopped"] is None and state["best_epoch"] == 8
  # Two bad epochs in a row stop it.
  state, _ = _run_plateau([10, 9, 9.5, 9.2, 1.0], lr_decay=1.0, max_bad_epochs=2)
  assert state["stopped"] == "2 epochs without validation improvement"
  assert state["epoch"] == 4 and state["best_epoch"] == 2


def test_learning_rate_decays_after_each_epoch_without_gain():
  _, rates = _run_plateau([10, 11, 12, 9, 9.1], lr_decay=2.0, max_bad_epochs=None)
  assert rates == [1.0, 0.5, 0.25, 0.25, 0.125]


def _splits(num=200):
  rng = np.random.default_rng(0)
  ids = [rng.integers(4, 50, size=n).astype(np.int32) for n in rng.integers(2, 30, size=num)]
  vocabulary = text.Vocabulary(list(text.SPECIALS) + [f"w{i}" for i in range(46)])
  return data.SentenceSplits(vocabulary=vocabulary, ids={"train": ids},
                             labels={"train": None}, stats={})


def _order(dataset):
  return [tuple(t for t in row if t) for batch in dataset
          for row in batch["tokens"].numpy().tolist()]


def test_each_epoch_has_its_own_shuffle_and_a_resume_sees_the_same_one():
  experiment = config.ExperimentConfig(train=config.TrainConfig(batch_size=16, seed=3))
  splits = _splits()
  first, second = (_order(train_lib.epoch_dataset(experiment, splits, e)) for e in (0, 1))
  assert sorted(first) == sorted(second) and first != second
  # A resumed run rebuilds epoch 1's dataset from scratch: the same order.
  assert _order(train_lib.epoch_dataset(experiment, _splits(), 1)) == second


def _strategy(task_type, task_id, cluster):
  resolver = types.SimpleNamespace(
      task_type=task_type, task_id=task_id,
      cluster_spec=lambda: tf.train.ClusterSpec(cluster))
  return types.SimpleNamespace(cluster_resolver=resolver)


def test_only_the_chief_writes_under_multi_worker_training():
  workers = {"worker": ["a:1", "b:1"]}
  with_chief = {"chief": ["c:1"], "worker": ["a:1", "b:1"]}
  assert train_lib.is_chief(tf.distribute.OneDeviceStrategy("/cpu:0"))
  assert train_lib.is_chief(_strategy("worker", 0, workers))
  assert not train_lib.is_chief(_strategy("worker", 1, workers))
  assert train_lib.is_chief(_strategy("chief", 0, with_chief))
  assert not train_lib.is_chief(_strategy("worker", 0, with_chief))


def test_a_refused_resume_leaves_the_runs_flags_file_alone(tmp_path):
  model_dir = tmp_path / "run"
  model_dir.mkdir()
  config.ExperimentConfig(model={"latent": "vmf", "concentration": 35.0}).save(
      model_dir / "config.json")
  (model_dir / "flags.txt").write_text("--kappa=35\n")
  result = _run("tf_vmfvae.train", "--flagfile=configs/smoke.flags",
                f"--model_dir={model_dir}", "--kappa=50")
  assert result.returncode != 0
  assert "another configuration" in result.stderr
  assert (model_dir / "flags.txt").read_text() == "--kappa=35\n"
  assert json.loads((model_dir / "config.json").read_text())["model"]["concentration"] == 35.0


@pytest.mark.parametrize("kind, expected", [
    ("mirrored", tf.distribute.MirroredStrategy),
    ("one_device", tf.distribute.OneDeviceStrategy),
])
def test_make_strategy_choices(kind, expected):
  assert isinstance(train_lib.make_strategy(kind), expected)


def test_auto_strategy_on_one_device_is_the_default_one(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  if len(tf.config.list_logical_devices("GPU")) > 1:
    pytest.skip("several GPUs: auto is MirroredStrategy")
  # The default strategy: Keras iterates the datasets itself, with no
  # multi-device iterator to wait for at the end of each epoch.
  assert train_lib.make_strategy("auto") is tf.distribute.get_strategy()
  assert not tf.distribute.has_strategy()


def test_make_strategy_rejects_unknown_kinds():
  with pytest.raises(ValueError, match="`strategy` must be one of"):
    train_lib.make_strategy("tpu")


def test_set_num_threads_caps_both_pools_and_rejects_negatives():
  with pytest.raises(ValueError, match="`num_threads` must be >= 0, got -1"):
    runs.set_num_threads(-1)
  # TensorFlow's pools can only be set before it runs anything: a fresh process.
  code = ("from tf_vmfvae import runs; import tensorflow as tf; "
          "runs.set_num_threads(1); "
          "print(tf.config.threading.get_intra_op_parallelism_threads(), "
          "tf.config.threading.get_inter_op_parallelism_threads())")
  run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
  assert run.returncode == 0, run.stderr[-3000:]
  assert run.stdout.split() == ["1", "1"]


def test_missing_data_dir_fails_with_clear_message(tmp_path):
  run = _run("tf_vmfvae.train", "--flagfile=configs/smoke.flags",
             f"--model_dir={tmp_path / 'm'}", f"--data_dir={tmp_path / 'nowhere'}")
  assert run.returncode != 0
  assert "does not hold the ptb files" in run.stderr


def test_label_conditioned_training_on_a_yelp_fixture(tmp_path, mirrored_strategy):
  """Yelp is not available here: a fixture in its format (`label w1 ... wn`)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  words = [f"w{i}" for i in range(40)]
  folder = tmp_path / "yelp"
  folder.mkdir()
  for split, num in (("train", 120), ("valid", 30), ("test", 30)):
    lines = []
    for _ in range(num):
      label = int(rng.integers(0, 5))
      # The rating shows in the words, so the label embedding can help.
      review = [f"star{label}"] + list(rng.choice(words, size=rng.integers(3, 60)))
      lines.append(" ".join([str(label)] + review))
    (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")
  experiment = config.ExperimentConfig(
      data=config.DataConfig(dataset="yelp", data_dir=str(folder), max_len=50),
      model=dict(latent="vmf", concentration=20.0, embedding_dim=8, hidden_dim=16,
                 latent_dim=4, label_dim=6),
      train=config.TrainConfig(optimizer="adam", learning_rate=0.01, batch_size=16, epochs=2,
                               log_latent_usage=False))
  train_lib.train(experiment, tmp_path / "model", strategy=mirrored_strategy, verbose=0)
  model, _ = runs.load_trained(tmp_path / "model")
  assert model.num_labels == 5 and model.label_dim == 6
  metrics = evaluate_lib.evaluate(tmp_path / "model", split="test", num_importance_samples=5,
                                  batch_size=10, progress=False)
  assert metrics["examples"] == 30 and metrics["iw_nll"] <= metrics["nll"] + 1e-3
  stats = json.loads((tmp_path / "model" / "metrics.json").read_text())
  assert stats["epochs"] == 2


def test_validation_uses_fixed_latent_draws_and_leaves_training_draws_alone():
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tf_vmfvae import data  # pylint: disable=g-import-not-at-top
  from tf_vmfvae.models import NVRNN  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  ids = [rng.integers(4, 40, size=n).astype(np.int32) for n in rng.integers(2, 12, size=64)]
  dataset = data.sentence_dataset(ids, batch_size=16)
  model = NVRNN(vocabulary_size=40, embedding_dim=8, hidden_dim=16, latent_dim=4,
                concentration=5.0, seed=1)
  model.compile(optimizer="adam")
  # Without the callback two validations draw different z: the ELBO differs.
  plain = [model.evaluate(dataset, verbose=0, return_dict=True)["loss"] for _ in range(2)]
  assert plain[0] != plain[1]
  callback = train_lib.FixedValidationSeed(model, seed=0)
  before = model.latent.seed_generator.state.numpy()
  fixed = [model.evaluate(dataset, verbose=0, return_dict=True, callbacks=[callback])["loss"]
           for _ in range(2)]
  assert fixed[0] == fixed[1]
  np.testing.assert_array_equal(model.latent.seed_generator.state.numpy(), before)


def test_a_run_directory_is_held_by_one_process_and_a_dead_holders_lock_is_taken_over(
    tmp_path):
  with runs.RunLock(tmp_path):
    with pytest.raises(runs.RunLockedError, match=f"process {os.getpid()} on "):
      with runs.RunLock(tmp_path):
        pass
  assert not (tmp_path / runs.LOCK_FILE).exists()
  # A lock left by a killed process (here: one that has exited) is taken over.
  gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True).stdout.strip()
  (tmp_path / runs.LOCK_FILE).write_text(f"{gone} {platform.node()}\n")
  with runs.RunLock(tmp_path) as lock:
    assert lock.taken_over == int(gone)
    assert (tmp_path / runs.LOCK_FILE).read_text().split()[0] == str(os.getpid())


def test_a_refusal_names_what_differs_and_a_resume_may_move_the_data(tmp_path):
  base = config.ExperimentConfig(model={"concentration": 35.0})
  base.save(tmp_path / runs.CONFIG_FILE)
  moved = dataclasses.replace(base, data=dataclasses.replace(base.data, data_dir="/elsewhere"),
                              train=dataclasses.replace(base.train, log_latent_usage=False))
  train_lib.check_same_config(tmp_path, moved)  # Neither changes the model or the data.
  other = dataclasses.replace(base, model={"concentration": 50.0},
                              train=dataclasses.replace(base.train, seed=2))
  with pytest.raises(ValueError, match=r"model.concentration: 35.0 -> 50.0; train.seed: 0 -> 2"):
    train_lib.check_same_config(tmp_path, other)


def test_the_flags_file_holds_the_binarys_own_flags_and_reruns_the_command(tmp_path):
  from tf_vmfvae import train  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
  with flagsaver.flagsaver():
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train", f"--flagfile={ROOT}/configs/smoke.flags", "--model_dir=/tmp/x"])
    text = train.own_flags_text()
    expected = train.experiment_from_flags()
  names = {line.split("=")[0].lstrip("-") for line in text.splitlines()}
  assert "test_random_seed" not in names and "test_tmpdir" not in names
  assert {"kappa", "model_dir", "nolog_latent_usage"} <= names
  (tmp_path / "flags.txt").write_text(text)
  assert train.experiment_from_args(f"--flagfile={tmp_path / 'flags.txt'}") == expected


def test_progress_is_logged_while_an_epoch_runs(caplog):
  progress = train_lib.ProgressLogger(epochs=10, steps=100, tokens_per_step=700.0,
                                      every_seconds=0.0)
  progress.on_epoch_begin(2)
  with caplog.at_level("INFO", logger="tf_vmfvae"):
    progress.on_train_batch_end(49, {"loss": 123.456})
  line = caplog.records[-1].getMessage()
  assert line.startswith("epoch 3/10: step 50/100, ") and "tokens/s, ETA" in line
  assert line.endswith("loss 123.456")


def test_ctrl_c_is_one_line_and_exit_status_130(capsys):
  from tf_vmfvae import cli  # pylint: disable=g-import-not-at-top

  def main(argv):
    del argv
    raise train_lib.TrainingInterrupted("Interrupted in epoch 3: rerun the same command "
                                        "to resume after epoch 2.")
  with pytest.raises(SystemExit) as exit_info:
    cli._guarded(main)([])  # pylint: disable=protected-access
  assert exit_info.value.code == 130
  assert capsys.readouterr().err == ("Interrupted in epoch 3: rerun the same command to "
                                     "resume after epoch 2.\n")


def _xla_experiment(folder, jit_compile, **model):
  return config.ExperimentConfig(
      data=config.DataConfig(dataset="ptb", data_dir=str(folder), bucket_width=3),
      model=dict(concentration=20.0, embedding_dim=8, hidden_dim=16, latent_dim=4, **model),
      train=config.TrainConfig(optimizer="adam", learning_rate=0.01, batch_size=16,
                               epochs=2, log_latent_usage=False, jit_compile=jit_compile))


@pytest.mark.parametrize("model", [dict(latent="vmf", sampler="table"),
                                   dict(latent="gaussian")], ids=["vmf_table", "gaussian"])
def test_an_xla_training_matches_the_default_one(tmp_path, model):
  """--jit_compile: the same seed gives the same history up to XLA's rounding."""
  from corpora import write_sentence_corpus  # pylint: disable=g-import-not-at-top
  folder = write_sentence_corpus(tmp_path / "data", lines=96)
  histories = {}
  for jit_compile in (False, True):
    model_dir = tmp_path / f"jit_{jit_compile}"
    train_lib.train(_xla_experiment(folder, jit_compile, **model), model_dir, verbose=0)
    histories[jit_compile] = [[h[k] for k in ("loss", "val_loss")]
                              for h in runs.load_state(model_dir)["history"]]
  # Not equal: XLA rounds differently and may pick another random-number
  # algorithm for the same seed, and training carries that on.
  np.testing.assert_allclose(histories[True], histories[False], rtol=2e-2)


def test_a_batch_padded_to_its_bucket_edge_scores_the_same():
  """The padding XLA's fixed shapes add is masked in the encoder and the loss."""
  from tf_vmfvae.data import pipeline  # pylint: disable=g-import-not-at-top
  from tf_vmfvae.models import NVRNN  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  ids = [rng.integers(4, 60, size=n) for n in (3, 4, 6)]
  plain = next(iter(pipeline.sentence_dataset(ids, batch_size=3, bucket_width=10)))
  padded = next(iter(pipeline.sentence_dataset(ids, batch_size=3, bucket_width=10,
                                               pad_to_bucket_edge=True)))
  assert plain["tokens"].shape[1] == 7 and padded["tokens"].shape[1] == 10
  model = NVRNN(60, embedding_dim=8, hidden_dim=16, latent_dim=4, concentration=20.0,
                seed=0)
  features = [model.encode_features(b).numpy() for b in (plain, padded)]
  np.testing.assert_allclose(features[1], features[0], rtol=1e-5, atol=1e-6)
  z = tf.math.l2_normalize(tf.random.stateless_normal([3, 4], seed=[1, 2]), axis=-1)
  np.testing.assert_allclose(model.reconstruction_nll(padded, z).numpy(),
                             model.reconstruction_nll(plain, z).numpy(), rtol=1e-5)
  np.testing.assert_array_equal(model.num_tokens(padded), model.num_tokens(plain))


def test_xla_with_woods_sampler_is_refused_before_anything_is_written(tmp_path):
  from corpora import write_sentence_corpus  # pylint: disable=g-import-not-at-top
  folder = write_sentence_corpus(tmp_path / "data", lines=32)
  with pytest.raises(ValueError, match="--jit_compile needs --sampler=table"):
    train_lib.train(_xla_experiment(folder, True, latent="vmf"), tmp_path / "run", verbose=0)
  assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
