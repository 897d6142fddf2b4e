"""KL-weight schedules for the Gaussian latent (KL annealing).

A schedule maps the training step (an integer tensor) to the weight of the KL
term. It is a pure function of the step, so the weight is right under
`tf.function`, after a resume from a checkpoint and under `tf.distribute`.

Schedules are Keras-serializable and may be given to `GaussianLatent` as an
object, a config dict, a number (a constant weight) or one of the names
`"constant"`, `"linear"`, `"sigmoid"`, `"cyclical"` (default arguments).
"""

import math

import keras
import tensorflow as tf

from tf_vmfvae import errors

_PACKAGE = "tf_vmfvae"


def _check_positive(name, value):
  if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
    raise errors.InvalidValueError(f"`{name}` must be a number > 0, got {value!r}.")


def _check_weight(name, value):
  if (not isinstance(value, (int, float)) or isinstance(value, bool)
      or not 0.0 <= value < math.inf):
    raise errors.InvalidValueError(f"`{name}` must be a finite number >= 0, got {value!r}.")


class KLSchedule:
  """Base class: `schedule(step)` returns the KL weight as a float32 scalar."""

  def __call__(self, step):
    raise NotImplementedError

  def get_config(self):
    raise NotImplementedError

  @classmethod
  def from_config(cls, config):
    return cls(**config)

  def __repr__(self):
    args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
    return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Constant(KLSchedule):
  """A constant KL weight (1.0 is the plain ELBO; < 1 "permanent annealing").

  Example:
  >>> float(Constant(0.5)(1000))
  0.5
  """

  def __init__(self, weight=1.0):
    _check_weight("weight", weight)
    self.weight = float(weight)

  def __call__(self, step):
    del step
    return tf.constant(self.weight, tf.float32)

  def get_config(self):
    return {"weight": self.weight}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LinearWarmup(KLSchedule):
  """Weight rising linearly from `initial_weight` to `final_weight`.

  weight(step) = initial + (final - initial) * min(step / warmup_steps, 1)

  Example:
  >>> float(LinearWarmup(warmup_steps=100)(50))
  0.5
  """

  def __init__(self, warmup_steps=10000, initial_weight=0.0, final_weight=1.0):
    _check_positive("warmup_steps", warmup_steps)
    _check_weight("initial_weight", initial_weight)
    _check_weight("final_weight", final_weight)
    self.warmup_steps = int(warmup_steps)
    self.initial_weight = float(initial_weight)
    self.final_weight = float(final_weight)

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    fraction = tf.minimum(step / float(self.warmup_steps), 1.0)
    return self.initial_weight + (self.final_weight - self.initial_weight) * fraction

  def get_config(self):
    return {"warmup_steps": self.warmup_steps,
            "initial_weight": self.initial_weight,
            "final_weight": self.final_weight}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Sigmoid(KLSchedule):
  """Logistic annealing of Bowman et al. (2016).

  weight(step) = final_weight / (1 + exp(-steepness * (step - midpoint)))

  The default reaches 0.5 at step 10,000 and ~0.99 at step 20,000, about
  the paper's "0 to 1 over the first 20 epochs" at 2,100 PTB steps an epoch.

  Example:
  >>> float(Sigmoid(midpoint=100, steepness=0.1)(100))
  0.5

  References:
    Bowman et al. (2016), https://arxiv.org/abs/1511.06349.
  """

  def __init__(self, midpoint=10000, steepness=0.00046, final_weight=1.0):
    _check_weight("midpoint", midpoint)
    _check_positive("steepness", steepness)
    _check_weight("final_weight", final_weight)
    self.midpoint = float(midpoint)
    self.steepness = float(steepness)
    self.final_weight = float(final_weight)

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    return self.final_weight * tf.sigmoid(self.steepness * (step - self.midpoint))

  def get_config(self):
    return {"midpoint": self.midpoint, "steepness": self.steepness,
            "final_weight": self.final_weight}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Cyclical(KLSchedule):
  """Cyclical annealing of Fu et al. (2019).

  Each cycle of `cycle_steps` steps rises linearly from 0 to `final_weight`
  over its first `increase_fraction` and stays there for the rest. After
  `num_cycles` cycles (if given) the weight stays at `final_weight`.

  Example:
  >>> [round(float(Cyclical(cycle_steps=10)(s)), 3) for s in (0, 2, 5, 9, 10)]
  [0.0, 0.4, 1.0, 1.0, 0.0]

  References:
    Fu et al. (2019), https://arxiv.org/abs/1903.10145.
  """

  def __init__(self, cycle_steps=10000, increase_fraction=0.5, final_weight=1.0,
               num_cycles=None):
    _check_positive("cycle_steps", cycle_steps)
    if not isinstance(increase_fraction, (int, float)) or not 0 < increase_fraction <= 1:
      raise errors.InvalidValueError(
          f"`increase_fraction` must be in (0, 1], got {increase_fraction!r}.")
    _check_weight("final_weight", final_weight)
    if num_cycles is not None:
      _check_positive("num_cycles", num_cycles)
    self.cycle_steps = int(cycle_steps)
    self.increase_fraction = float(increase_fraction)
    self.final_weight = float(final_weight)
    self.num_cycles = None if num_cycles is None else int(num_cycles)

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    phase = tf.math.floormod(step, float(self.cycle_steps)) / float(self.cycle_steps)
    weight = self.final_weight * tf.minimum(phase / self.increase_fraction, 1.0)
    if self.num_cycles is not None:
      done = step >= float(self.num_cycles * self.cycle_steps)
      weight = tf.where(done, self.final_weight, weight)
    return weight

  def get_config(self):
    return {"cycle_steps": self.cycle_steps,
            "increase_fraction": self.increase_fraction,
            "final_weight": self.final_weight, "num_cycles": self.num_cycles}


_BY_NAME = {
    "constant": Constant,
    "linear": LinearWarmup,
    "sigmoid": Sigmoid,
    "cyclical": Cyclical,
}


def get(identifier):
  """Returns a `KLSchedule` from a schedule, a name, a number or a config.

  Args:
    identifier: a `KLSchedule`; one of "constant", "linear", "sigmoid",
      "cyclical" (default arguments); a number (a constant weight); or a
      config dict as written by `keras.saving.serialize_keras_object`.

  Raises:
    ValueError: for anything else, naming the value received.
  """
  if isinstance(identifier, KLSchedule):
    return identifier
  if isinstance(identifier, str):
    if identifier not in _BY_NAME:
      raise errors.InvalidValueError(
          f"`kl_schedule` must be one of {sorted(_BY_NAME)}, a "
          f"number or a KLSchedule, got {identifier!r}.")
    return _BY_NAME[identifier]()
  if isinstance(identifier, (int, float)) and not isinstance(identifier, bool):
    return Constant(identifier)
  if isinstance(identifier, dict):
    schedule = keras.saving.deserialize_keras_object(identifier)
    if isinstance(schedule, KLSchedule):
      return schedule
  raise errors.InvalidValueError(
      f"`kl_schedule` must be one of {sorted(_BY_NAME)}, a number "
      f"or a KLSchedule, got {identifier!r}.")
