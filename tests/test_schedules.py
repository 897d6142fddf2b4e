"""KL-weight schedules: values at chosen steps, serialization, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_vmfvae.latent import schedules


def _values(schedule, steps):
  return [float(schedule(tf.constant(s, tf.int64))) for s in steps]


def test_constant():
  assert _values(schedules.Constant(0.2), [0, 10, 10**6]) == pytest.approx([0.2] * 3)


def test_linear_warmup():
  schedule = schedules.LinearWarmup(warmup_steps=100, initial_weight=0.1, final_weight=1.0)
  assert _values(schedule, [0, 50, 100, 5000]) == pytest.approx([0.1, 0.55, 1.0, 1.0])


def test_sigmoid_bowman():
  schedule = schedules.Sigmoid(midpoint=1000, steepness=0.01)
  expected = [1 / (1 + np.exp(-0.01 * (s - 1000))) for s in (0, 1000, 1500)]
  assert _values(schedule, [0, 1000, 1500]) == pytest.approx(expected, rel=1e-6)
  default = schedules.Sigmoid()
  low, mid, high = _values(default, [0, 10000, 20000])
  assert low < 0.02 and mid == pytest.approx(0.5) and high > 0.98


def test_cyclical_fu_et_al():
  schedule = schedules.Cyclical(cycle_steps=10, increase_fraction=0.5, final_weight=1.0,
                                num_cycles=2)
  assert _values(schedule, [0, 1, 5, 9, 10, 12, 19, 20, 25, 1000]) == pytest.approx(
      [0.0, 0.2, 1.0, 1.0, 0.0, 0.4, 1.0, 1.0, 1.0, 1.0])


def test_works_in_tf_function():
  schedule = schedules.LinearWarmup(warmup_steps=10)
  fn = tf.function(schedule.__call__)
  assert float(fn(tf.constant(5, tf.int64))) == pytest.approx(0.5)


@pytest.mark.parametrize("schedule", [
    schedules.Constant(0.3), schedules.LinearWarmup(20, 0.0, 0.9),
    schedules.Sigmoid(50, 0.2, 1.0), schedules.Cyclical(30, 0.25, 1.0, 3)])
def test_serialization_round_trip(schedule):
  config = keras.saving.serialize_keras_object(schedule)
  clone = schedules.get(config)
  assert type(clone) is type(schedule)
  assert clone.get_config() == schedule.get_config()
  assert _values(clone, [0, 7, 40]) == _values(schedule, [0, 7, 40])


def test_get_by_name_and_number():
  assert isinstance(schedules.get("sigmoid"), schedules.Sigmoid)
  assert isinstance(schedules.get("cyclical"), schedules.Cyclical)
  assert schedules.get(0.5).weight == 0.5


@pytest.mark.parametrize("bad", ["cosine", None, [1.0], True, {"class_name": "Nope", "config": {}}])
def test_unknown_schedule_raises(bad):
  with pytest.raises((ValueError, TypeError), match="kl_schedule|Nope|Could not"):
    schedules.get(bad)


@pytest.mark.parametrize("make,match", [
    (lambda: schedules.Constant(-1.0), "`weight` must be a finite number >= 0, got -1.0"),
    (lambda: schedules.LinearWarmup(0), "`warmup_steps` must be a number > 0, got 0"),
    (lambda: schedules.Sigmoid(steepness=0), "`steepness`"),
    (lambda: schedules.Cyclical(10, increase_fraction=1.5), "`increase_fraction`"),
])
def test_bad_schedule_arguments_raise(make, match):
  with pytest.raises(ValueError, match=match):
    make()
