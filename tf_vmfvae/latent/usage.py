"""How much a model uses its latent code: mutual information and active units.

A fixed kappa keeps the KL from vanishing, not the encoder from being
ignored: these two numbers tell whether the code carries information about x.

  MI = I(x; z) under q, estimated per batch as
       mean_x[log q(z|x) - log (1/B) sum_x' q(z|x')], z ~ q(z|x)
       (Hoffman & Johnson 2016; He et al. 2019's estimator). It averages over
       the batch's examples, so it cannot exceed log(B) nats.
  AU = number of latent dimensions whose posterior mean E_q[z] varies across
       the data with variance > 0.01 times that coordinate's variance under
       the prior (Burda et al. 2016's 0.01 for N(0, I); 0.01 / d for the
       uniform prior on S^{d-1}, whose coordinates have variance 1/d).

Example:
>>> import numpy as np
>>> count_active_units(np.eye(4), prior_coordinate_variance=1.0)
4
"""

import numpy as np
import tensorflow as tf

ACTIVE_UNIT_THRESHOLD = 0.01


def mutual_information(latent, parameters, z):
  """The batch estimate of I(x; z) in nats, a float32 scalar.

  Args:
    latent: a `LatentLayer`.
    parameters: its posterior parameters for a batch of B examples.
    z: [B, latent_dim], one draw z_i ~ q(z | x_i) per example.
  """
  log_q_own = latent.posterior_log_prob(z, parameters)
  log_q_all = latent.posterior_log_prob(z[:, None, :], parameters)  # [B, B]
  batch_size = tf.cast(tf.shape(z)[0], tf.float32)
  log_q_aggregate = tf.reduce_logsumexp(log_q_all, axis=1) - tf.math.log(batch_size)
  return tf.reduce_mean(log_q_own - log_q_aggregate)


def count_active_units(means, prior_coordinate_variance=1.0,
                       threshold=ACTIVE_UNIT_THRESHOLD):
  """Counts the latent dimensions the encoder uses (active units).

  A dimension is active when its posterior mean varies across the data
  with a variance above `threshold` times its variance under the prior.

  Args:
    means: float array [examples, latent_dim], E_q[z] of each example.
    prior_coordinate_variance: float, a coordinate's variance under p(z)
      (`LatentLayer.prior_coordinate_variance()`).
    threshold: float, the fraction of the prior variance; 0.01 by default.

  Returns:
    int.

  Example:
  >>> rng = np.random.default_rng(0)
  >>> z = rng.normal(size=(1000, 200))
  >>> z /= np.linalg.norm(z, axis=1, keepdims=True)   # spread over S^199
  >>> count_active_units(z, prior_coordinate_variance=1 / 200)
  200
  >>> count_active_units(np.tile(z[:1], (1000, 1)), prior_coordinate_variance=1 / 200)
  0
  """
  variance = np.var(np.asarray(means), axis=0)
  return int(np.sum(variance > threshold * prior_coordinate_variance))


class LatentUsage:
  """MI, active units and (learned kappa) the concentration over a dataset.

  Runs the encoder only, with stateless draws from `seed`: the latent's own
  seed generator, and so training, is untouched. Keep one instance per
  model: its traced function is reused from call to call.

  Args:
    model: an NVRNN or NVDM with a latent.
    seed: int.

  Call arguments:
    dataset: the model's batches (e.g. the validation split).

  Returns:
    dict: "mi" (mean of the batch estimates, nats), "active_units", and for
    a learned concentration "kappa_mean", "kappa_p10", "kappa_p90".

  Example:
  >>> usage = LatentUsage(model)                    # doctest: +SKIP
  >>> usage(validation_batches)["active_units"]    # doctest: +SKIP
  50
  """

  def __init__(self, model, seed=0):
    self.model = model
    self.latent = model.latent
    self.seed = seed
    self._traced = None

  def _traced_encode(self, dataset):
    """`_encode` traced once for every batch shape of the dataset's structure
    (the vMF sampler is slow to trace; length buckets would retrace it)."""
    if self._traced is None:
      spec = tf.nest.map_structure(
          lambda s: tf.TensorSpec([None] * s.shape.rank, s.dtype), dataset.element_spec)
      self._traced = tf.function(self._encode,
                                 input_signature=[spec, tf.TensorSpec([], tf.int32)])
    return self._traced

  def _encode(self, batch, step):
    parameters = self.latent.posterior_parameters(self.model.encode_features(batch))
    z = self.latent.sample(parameters, seed=tf.stack([tf.constant(self.seed), step]))
    return (mutual_information(self.latent, parameters, z),
            self.latent.posterior_mean(parameters),
            parameters.get("concentration", tf.zeros([0])))

  def __call__(self, dataset):
    encode = self._traced_encode(dataset)
    mis, means, kappas = [], [], []
    for step, batch in enumerate(dataset):
      mi, mean, kappa = encode(batch, tf.constant(step))
      mis.append(float(mi))
      means.append(mean.numpy())
      kappas.append(kappa.numpy())
    result = {"mi": float(np.mean(mis)),
              "active_units": count_active_units(np.concatenate(means),
                                                 self.latent.prior_coordinate_variance())}
    if getattr(self.latent, "learned", False):
      kappa = np.concatenate(kappas)
      result.update(kappa_mean=float(kappa.mean()), kappa_p10=float(np.percentile(kappa, 10)),
                    kappa_p90=float(np.percentile(kappa, 90)))
    return result
