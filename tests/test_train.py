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
                               epochs=epochs, steps_per_epoch=8,
                               **{"log_latent_usage": False, **train}))


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
  # Each start is recorded with the machine: the first from epoch 0, the resume from 1.
  assert [m["from_epoch"] for m in state["machines"]] == [0, 1]
  assert state["machines"][1]["cpus"] == len(os.sched_getaffinity(0))
  last = keras.saving.load_model(tmp_path / state["checkpoint"], safe_mode=True)
  assert int(last.optimizer.iterations.numpy()) == 3 * 8  # Optimizer state carried over.
  # The epoch before the last stays until the next is complete.
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["epoch-002.keras", "epoch-003.keras"]
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


def test_a_damaged_checkpoint_is_one_line_and_the_run_resumes_from_the_epoch_before(
    tmp_path, caplog):
  train_lib.train(_experiment(epochs=2), tmp_path, verbose=0)
  last = tmp_path / "checkpoints" / "epoch-002.keras"
  last.write_bytes(last.read_bytes()[:1000])  # Truncated.
  with caplog.at_level("WARNING", logger="tf_vmfvae"):
    metrics = train_lib.train(_experiment(epochs=3), tmp_path, verbose=0)
  assert any("epoch-002.keras is damaged" in r.getMessage() and "resuming from epoch 1"
             in r.getMessage() for r in caplog.records)
  state = json.loads((tmp_path / "state.json").read_text())
  assert metrics["epochs"] == 3 and [h["epoch"] for h in state["history"]] == [1, 2, 3]
  # Both damaged, nothing to fall back to: one line, and nothing rewritten.
  for name in os.listdir(tmp_path / "checkpoints"):
    (tmp_path / "checkpoints" / name).write_bytes(b"broken")
  before = (tmp_path / "config.json").read_text(), (tmp_path / "state.json").read_text()
  with pytest.raises(train_lib.DamagedCheckpointError, match="no earlier checkpoint is left"):
    train_lib.train(_experiment(epochs=4), tmp_path, verbose=0)
  assert ((tmp_path / "config.json").read_text(), (tmp_path / "state.json").read_text()) == before


def test_budget_schedule_runs_its_epochs_to_a_zero_rate_across_a_resume(tmp_path):
  experiment = _experiment(epochs=3, lr_schedule="cosine", warmup_epochs=0.5)
  with pytest.raises(KeyboardInterrupt):
    train_lib.train(experiment, tmp_path, verbose=0, callbacks=[_Interrupt(epoch=1)])
  metrics = train_lib.train(experiment, tmp_path, verbose=0)
  state = json.loads((tmp_path / "state.json").read_text())
  assert metrics["epochs"] == 3 and [h["epoch"] for h in state["history"]] == [1, 2, 3]
  # After epoch 1 (8 of 24 steps, 4 of warm-up): 0.01 * (1 + cos(pi * 4 / 20)) / 2.
  rates = [h["learning_rate"] for h in state["history"][1:]] + [state["learning_rate"]]
  np.testing.assert_allclose(rates, [0.01 * (1 + np.cos(np.pi * 4 / 20)) / 2,
                                     0.01 * (1 + np.cos(np.pi * 12 / 20)) / 2, 0.0], atol=1e-7)
  # The decay is set by the budget: a longer one is refused, not stretched.
  with pytest.raises(ValueError, match="budget schedule"):
    train_lib.train(_experiment(epochs=4, lr_schedule="cosine", warmup_epochs=0.5), tmp_path,
                    verbose=0)


@pytest.mark.parametrize("latent", ["vmf", "vmf_learned"])
def test_latent_usage_is_logged_each_epoch_when_asked(tmp_path, latent, mirrored_strategy):
  train_lib.train(_experiment(epochs=2, latent=latent, log_latent_usage=True), tmp_path / "on",
                  strategy=mirrored_strategy, verbose=0)
  history = json.loads((tmp_path / "on" / "state.json").read_text())["history"]
  for logs in history:
    assert 0 <= logs["val_active_units"] <= 6
    if latent == "vmf_learned":  # Inside the default clip range [1, 500].
      assert 1.0 <= logs["val_kappa_p10"] <= logs["val_kappa_p90"] <= 500.0
  # TensorBoard gets them too: its validation event file names the tag.
  events = b"".join(p.read_bytes() for p in (tmp_path / "on" / "logs").rglob("*tfevents*"))
  assert b"epoch_mi" in events and b"epoch_active_units" in events
  train_lib.train(_experiment(epochs=1, latent=latent), tmp_path / "off",
                  strategy=mirrored_strategy, verbose=0)
  history = json.loads((tmp_path / "off" / "state.json").read_text())["history"]
  assert "val_mi" not in history[0]


@pytest.mark.parametrize("latent", ["vmf", "gaussian", "none"])
def test_iw_nll_is_at_most_elbo_nll(tmp_path, mirrored_strategy, latent):
  train_lib.train(_experiment(epochs=1, latent=latent), tmp_path,
                  strategy=mirrored_strategy, verbose=0)
  metrics = evaluate_lib.evaluate(tmp_path, split="valid", num_importance_samples=20,
                                  batch_size=40, max_batches=3, progress=False,
                                  paper_estimator_samples=3)
  assert metrics["examples"] == 120
  assert metrics["iw_nll"] <= metrics["nll"] + 1e-3
  # PPL is exp(sum NLL / tokens incl. <eos>), from the same numbers.
  assert metrics["ppl"] == pytest.approx(
      np.exp(metrics["nll"] * metrics["examples"] / metrics["tokens"]), rel=1e-5)
  if latent == "vmf":
    assert metrics["kl"] == pytest.approx(
        train_lib.build_model(_experiment(), 300).latent.constant_kl, rel=1e-5)
    # Judged against the sphere's coordinate variance 1/d, d = 6.
    assert metrics["active_unit_threshold"] == pytest.approx(0.01 / 6)
  if latent != "none":
    # The minibatch MI estimate's cap, log(batch size), is reported beside it.
    assert metrics["mi_cap"] == pytest.approx(np.log(40))
  if latent == "none":
    assert metrics["iw_nll"] == pytest.approx(metrics["nll"], rel=1e-6)
    assert "mi" not in metrics and "paper_nll" not in metrics
  else:
    # The paper's estimator charges the same KL; its reconstruction differs.
    assert np.isfinite(metrics["paper_nll"]) and metrics["paper_nll"] > metrics["kl"]
    assert metrics["paper_nll"] != pytest.approx(metrics["nll"], rel=1e-6)
    assert "paper protocol: mean of 3 z decoded, one KL; not a bound" in (
        evaluate_lib.format_table(metrics))
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
