"""Trainer and evaluator end to end on the real PTB: smoke, resume, IW bound."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tf_vmfvae import config
from tf_vmfvae import evaluate_lib
from tf_vmfvae import runs
from tf_vmfvae import train_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(
    not os.environ.get("TF_VMFVAE_DATA_DIR"), reason="needs TF_VMFVAE_DATA_DIR (../shared/data)")


def _experiment(epochs=2, latent="vmf", **train):
  return config.ExperimentConfig(
      data=config.DataConfig(dataset="ptb", max_vocab_size=300, max_len=25),
      model=dict(latent=latent, concentration=20.0, embedding_dim=16, hidden_dim=24,
                 latent_dim=6, decoder_mode="standard"),
      train=config.TrainConfig(optimizer="adam", learning_rate=0.01, batch_size=32,
                               epochs=epochs, steps_per_epoch=8, **train))


class _Interrupt(keras.callbacks.Callback):
  """Stands in for a killed process: raises in the middle of epoch `epoch`."""

  def __init__(self, epoch):
    super().__init__()
    self.epoch = epoch

  def on_train_batch_end(self, batch, logs=None):
    if self.model.optimizer.iterations.numpy() == self.epoch * 8 + 3:
      raise KeyboardInterrupt("simulated kill")


def test_resume_after_interruption_loses_and_repeats_no_epoch(tmp_path, mirrored_strategy):
  experiment = _experiment(epochs=3)
  with pytest.raises(KeyboardInterrupt):
    train_lib.train(experiment, tmp_path, strategy=mirrored_strategy, verbose=0,
                    callbacks=[_Interrupt(epoch=1)])
  state = json.loads((tmp_path / "state.json").read_text())
  assert state["epoch"] == 1  # Epoch 2 was interrupted before it completed.
  metrics = train_lib.train(experiment, tmp_path, strategy=mirrored_strategy, verbose=0)
  state = json.loads((tmp_path / "state.json").read_text())
  assert [h["epoch"] for h in state["history"]] == [1, 2, 3]
  assert metrics["epochs"] == 3
  last = keras.saving.load_model(tmp_path / state["checkpoint"], safe_mode=True)
  assert int(last.optimizer.iterations.numpy()) == 3 * 8  # Optimizer state carried over.
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["epoch-003.keras"]
  # A finished run is not trained again; a larger epoch budget trains it
  # longer; any other change of configuration is refused.
  assert train_lib.train(experiment, tmp_path, strategy=mirrored_strategy, verbose=0)["epochs"] == 3
  longer = train_lib.train(_experiment(epochs=4), tmp_path, strategy=mirrored_strategy, verbose=0)
  assert longer["epochs"] == 4
  state = json.loads((tmp_path / "state.json").read_text())
  assert [h["epoch"] for h in state["history"]] == [1, 2, 3, 4]
  assert config.ExperimentConfig.load(tmp_path / "config.json").train.epochs == 4
  with pytest.raises(ValueError, match="another configuration"):
    train_lib.train(_experiment(epochs=4, seed=1), tmp_path, strategy=mirrored_strategy,
                    verbose=0)


@pytest.mark.parametrize("latent", ["vmf", "gaussian", "none"])
def test_iw_nll_is_at_most_elbo_nll(tmp_path, mirrored_strategy, latent):
  train_lib.train(_experiment(epochs=1, latent=latent), tmp_path,
                  strategy=mirrored_strategy, verbose=0)
  metrics = evaluate_lib.evaluate(tmp_path, split="valid", num_importance_samples=20,
                                  batch_size=40, max_batches=3, progress=False,
                                  paper_estimator_samples=3)
  assert metrics["examples"] == 120
  assert metrics["iw_nll"] <= metrics["nll"] + 1e-3
  assert metrics["ppl"] > 1.0
  if latent == "vmf":
    assert metrics["kl"] == pytest.approx(
        train_lib.build_model(_experiment(), 300).latent.constant_kl, rel=1e-5)
    assert 0 <= metrics["active_units"] <= 6
  if latent == "none":
    assert metrics["iw_nll"] == pytest.approx(metrics["nll"], rel=1e-6)
    assert "mi" not in metrics and "paper_nll" not in metrics
  else:
    # The paper's estimator charges the same KL; its reconstruction differs.
    assert np.isfinite(metrics["paper_nll"]) and metrics["paper_nll"] > metrics["kl"]
    assert metrics["paper_nll"] != pytest.approx(metrics["nll"], rel=1e-6)
    assert "paper's estimator, mean of 3 z; not a bound" in evaluate_lib.format_table(metrics)
  table = evaluate_lib.format_table(metrics)
  assert "NLL (IW, K=20)" in table and "PPL (ELBO, corpus" in table


def _run(module, *args):
  return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=600, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})


def test_smoke_flags_train_then_evaluate_end_to_end(tmp_path):
  model_dir = str(tmp_path / "smoke")
  train = _run("tf_vmfvae.train", "--flagfile=configs/smoke.flags", f"--model_dir={model_dir}")
  assert train.returncode == 0, train.stderr[-3000:]
  assert "Done: 2 epochs" in train.stdout
  for name in ("config.json", "vocab.txt", "flags.txt", "state.json", "best.keras",
               "metrics.json"):
    assert os.path.isfile(os.path.join(model_dir, name)), name
  assert "--kappa=30.0" in open(os.path.join(model_dir, "flags.txt")).read()
  evaluate = _run("tf_vmfvae.evaluate", f"--model_dir={model_dir}", "--split=test",
                  "--num_importance_samples=10", "--max_batches=2", "--num_threads=1")
  assert evaluate.returncode == 0, evaluate.stderr[-3000:]
  assert "NLL (ELBO) per sentence" in evaluate.stdout
  result = json.load(open(os.path.join(model_dir, "eval_test.json")))
  assert result["examples"] == 100 and result["iw_nll"] <= result["nll"] + 1e-3


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
      train=config.TrainConfig(optimizer="adam", learning_rate=0.01, batch_size=16, epochs=2))
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
