"""The base class of the zoo's models: `keras.Model`, made to train under
`MultiWorkerMirroredStrategy`."""

import keras
import tensorflow as tf


def _is_multi_worker(strategy):
  return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
          and strategy.extended._in_multi_worker_mode())  # pylint: disable=protected-access


class Model(keras.Model):
  """A `keras.Model` whose `fit` and `evaluate` work across workers.

  Keras 3.15's `fit` fails under `MultiWorkerMirroredStrategy` in two places
  (tensorflow/tensorflow#72388); this class works around both and changes
  nothing under any other strategy:

  - Before the first step it reduces the first distributed batch across
    replicas to build the model symbolically, which fails for a dict of
    token batches ("Attempt to convert a value ({'tokens': PerReplica ...})
    to a Tensor"). The zoo's models are functional, hence built when
    constructed, and compiled without a Keras loss or metrics: only the
    optimizer is left to build, and that needs no data.
  - It averages each step's logs across workers with
    `strategy.reduce("MEAN", value, axis=0)`, which rejects a scalar. The
    steps here return each log as a vector of one element under that
    strategy, so the reduction averages it across workers into a scalar.

  `tests/test_multi_worker.py` trains with two worker processes.
  """

  def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    unbuilt_compile_state = any(
        part is not None and not part.built
        for part in (getattr(self, "_compile_metrics", None),
                     getattr(self, "_compile_loss", None)))
    if not self.built or unbuilt_compile_state:
      return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
    if self.optimizer is not None and not self.optimizer.built:
      with self.distribute_strategy.scope():
        self.optimizer.build(self.trainable_variables)

  def _worker_logs(self, logs):
    if not _is_multi_worker(self.distribute_strategy):
      return logs
    return {name: tf.reshape(value, [1]) if tf.is_tensor(value) and value.shape.rank == 0
            else value for name, value in logs.items()}

  def train_step(self, data):
    return self._worker_logs(super().train_step(data))

  def test_step(self, data):
    return self._worker_logs(super().test_step(data))
