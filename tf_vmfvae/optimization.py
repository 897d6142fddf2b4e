"""The trainer's optimizers and learning-rate schedules.

Two ways to set the learning rate over a run (`TrainConfig.lr_schedule`):

- "plateau" (the paper's): a constant rate, divided by `lr_decay` after
  each epoch without a validation gain; the run stops after
  `max_bad_epochs` such epochs in a row (`train_lib.apply_plateau_rule`).
- "cosine" or "linear" (a *budget*): a linear warm-up over
  `warmup_epochs`, then a decay to zero at the end of the last of `epochs`
  epochs, a function of the optimizer's step alone. The run lasts exactly
  `epochs` epochs, so fixed-size experiments cost a known price
  (`configs/budget.flags`); the best epoch on validation is still kept.

Example:
>>> schedule = BudgetSchedule(0.002, total_steps=100, warmup_steps=10)
>>> [round(float(schedule(s)), 5) for s in (0, 9, 10, 55, 100)]
[0.0002, 0.002, 0.002, 0.001, 0.0]
"""

import math

import keras

from tf_vmfvae import config
from tf_vmfvae import errors

# Every schedule of `config.LR_SCHEDULES` but "plateau" is a budget.
BUDGET_DECAYS = tuple(name for name in config.LR_SCHEDULES if name != "plateau")


@keras.saving.register_keras_serializable(package="tf_vmfvae")
class BudgetSchedule(keras.optimizers.schedules.LearningRateSchedule):
  """Linear warm-up to a peak rate, then a cosine or linear decay to zero.

  rate(s) = peak * (s + 1) / warmup_steps                 for s < warmup_steps
  rate(s) = peak * f((s - warmup_steps) / (total_steps - warmup_steps))  after,
  f(p) = (1 + cos(pi p)) / 2 ("cosine") or 1 - p ("linear"), p clipped to
  [0, 1]: the rate is 0 from `total_steps` on.

  Args:
    peak_learning_rate: float > 0.
    total_steps: int >= 1, the step at which the rate reaches zero (the
      budget: epochs x steps per epoch).
    warmup_steps: int in [0, total_steps).
    decay: "cosine" or "linear".

  Example:
  >>> round(float(BudgetSchedule(1.0, 10, decay="linear")(5)), 3)
  0.5
  """

  def __init__(self, peak_learning_rate, total_steps, warmup_steps=0, decay="cosine"):
    if not peak_learning_rate > 0:
      raise errors.InvalidValueError(
          f"`peak_learning_rate` must be > 0, got {peak_learning_rate!r}.")
    if not isinstance(total_steps, int) or total_steps < 1:
      raise errors.InvalidValueError(f"`total_steps` must be an integer >= 1, got {total_steps!r}.")
    if not isinstance(warmup_steps, int) or not 0 <= warmup_steps < total_steps:
      raise errors.InvalidValueError(
          f"`warmup_steps` must be an integer in [0, total_steps={total_steps}), "
          f"got {warmup_steps!r}.")
    if decay not in BUDGET_DECAYS:
      raise errors.InvalidValueError(
          f"`decay` must be one of {list(BUDGET_DECAYS)}, got {decay!r}.")
    self.peak_learning_rate = float(peak_learning_rate)
    self.total_steps = total_steps
    self.warmup_steps = warmup_steps
    self.decay = decay

  def __call__(self, step):
    ops = keras.ops
    step = ops.cast(step, "float32")
    warmup = float(max(self.warmup_steps, 1))
    progress = ops.clip((step - self.warmup_steps) / float(self.total_steps - self.warmup_steps),
                        0.0, 1.0)
    if self.decay == "cosine":
      factor = 0.5 * (1.0 + ops.cos(math.pi * progress))
    else:
      factor = 1.0 - progress
    warming = ops.minimum((step + 1.0) / warmup, 1.0)
    return self.peak_learning_rate * ops.where(step < self.warmup_steps, warming, factor)

  def get_config(self):
    return {"peak_learning_rate": self.peak_learning_rate, "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps, "decay": self.decay}


def make_optimizer(train_config, steps_per_epoch=None):
  """The optimizer a `TrainConfig` describes.

  Args:
    train_config: `tf_vmfvae.config.TrainConfig`.
    steps_per_epoch: int, the batches of one epoch; needed by the budget
      schedules ("cosine", "linear"), ignored by "plateau".

  Returns:
    A Keras optimizer (SGD or Adam, with the global gradient-norm clip).
  """
  tc = train_config
  learning_rate = tc.learning_rate
  if tc.lr_schedule in BUDGET_DECAYS:
    if not steps_per_epoch:
      raise errors.InvalidValueError(
          f"The {tc.lr_schedule!r} schedule needs `steps_per_epoch`, got "
          f"{steps_per_epoch!r}.")
    learning_rate = BudgetSchedule(
        tc.learning_rate, total_steps=tc.epochs * steps_per_epoch,
        warmup_steps=int(round(tc.warmup_epochs * steps_per_epoch)), decay=tc.lr_schedule)
  clip = {"global_clipnorm": tc.clip_norm} if tc.clip_norm else {}
  if tc.optimizer == "sgd":
    return keras.optimizers.SGD(learning_rate=learning_rate, **clip)
  return keras.optimizers.Adam(learning_rate=learning_rate, **clip)


def current_learning_rate(optimizer):
  """The rate the optimizer's next step will use, as a float."""
  rate = optimizer.learning_rate  # Keras evaluates a schedule at `iterations`.
  return float(keras.ops.convert_to_numpy(rate))
