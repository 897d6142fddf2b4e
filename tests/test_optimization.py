"""Learning-rate schedules: the budget's shape, its config checks, and the
plateau rule's hands off a budget run."""

import math

import keras
import numpy as np
import pytest

from tf_vmfvae import config
from tf_vmfvae import optimization
from tf_vmfvae import train_lib


def _rates(schedule, steps):
  return np.array([float(schedule(step)) for step in steps])


def test_cosine_budget_warms_up_linearly_then_follows_the_half_cosine_to_zero():
  schedule = optimization.BudgetSchedule(3e-3, total_steps=1000, warmup_steps=100)
  np.testing.assert_allclose(_rates(schedule, [0, 49, 99]), 3e-3 * np.array([1, 50, 100]) / 100,
                             rtol=1e-6)
  steps = np.array([100, 325, 550, 775, 999, 1000, 5000])
  expected = 3e-3 * 0.5 * (1 + np.cos(np.pi * np.minimum((steps - 100) / 900, 1)))
  np.testing.assert_allclose(_rates(schedule, steps), expected, rtol=1e-5, atol=1e-9)
  assert float(schedule(1000)) == 0.0


def test_linear_budget_without_warmup_falls_in_a_straight_line():
  schedule = optimization.BudgetSchedule(1.0, total_steps=8, decay="linear")
  np.testing.assert_allclose(_rates(schedule, range(10)),
                             [1, .875, .75, .625, .5, .375, .25, .125, 0, 0], atol=1e-6)


def test_schedule_round_trips_through_keras_serialization():
  schedule = optimization.BudgetSchedule(2e-3, total_steps=50, warmup_steps=5, decay="linear")
  restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
  assert restored.get_config() == schedule.get_config()
  np.testing.assert_allclose(_rates(restored, range(0, 60, 7)), _rates(schedule, range(0, 60, 7)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(peak_learning_rate=0.0, total_steps=10), "peak_learning_rate"),
    (dict(peak_learning_rate=1.0, total_steps=0), "total_steps"),
    (dict(peak_learning_rate=1.0, total_steps=10, warmup_steps=10), "warmup_steps"),
    (dict(peak_learning_rate=1.0, total_steps=10, decay="step"), "decay"),
])
def test_schedule_rejects_bad_arguments_by_name(kwargs, match):
  with pytest.raises(ValueError, match=match):
    optimization.BudgetSchedule(**kwargs)


def test_make_optimizer_spans_the_budget_over_epochs_times_steps():
  tc = config.TrainConfig(optimizer="adam", learning_rate=2e-3, lr_schedule="cosine",
                          warmup_epochs=0.5, epochs=4, clip_norm=5.0)
  optimizer = optimization.make_optimizer(tc, steps_per_epoch=10)
  schedule = optimizer._learning_rate  # pylint: disable=protected-access
  assert (schedule.total_steps, schedule.warmup_steps) == (40, 5)
  assert optimization.current_learning_rate(optimizer) == pytest.approx(2e-3 / 5)
  with pytest.raises(ValueError, match="steps_per_epoch"):
    optimization.make_optimizer(tc)
  plateau = optimization.make_optimizer(config.TrainConfig(learning_rate=10.0))
  assert optimization.current_learning_rate(plateau) == pytest.approx(10.0)


@pytest.mark.parametrize("train, match", [
    (dict(lr_schedule="step"), "lr_schedule"),
    (dict(lr_schedule="cosine", epochs=2, warmup_epochs=2.0), "warmup_epochs"),
    (dict(warmup_epochs=-1.0), "warmup_epochs"),
])
def test_config_rejects_bad_schedules(train, match):
  with pytest.raises(ValueError, match=match):
    config.ExperimentConfig(train=config.TrainConfig(**train))


def test_plateau_rule_leaves_a_budget_run_its_rate_and_its_epochs():
  tc = config.TrainConfig(lr_schedule="linear", lr_decay=2.0, max_bad_epochs=1)
  state = {"epoch": 0, "best_val_nll": math.inf, "best_epoch": 0, "bad_epochs": 0,
           "learning_rate": 1.0, "stopped": None}
  for nll in [5.0, 6.0, 7.0, 4.0, 8.0]:
    state["epoch"] += 1
    train_lib.apply_plateau_rule(state, nll, tc)
  assert (state["best_epoch"], state["learning_rate"], state["stopped"]) == (4, 1.0, None)
