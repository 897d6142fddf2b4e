"""Evaluation of trained NVRNN models: ELBO, importance-weighted NLL, MI, AU.

For each sentence x (tokens include <eos>):
  ELBO NLL   = E_q[-log p(x|z)] + KL(q(z|x) || p(z)), one z ~ q per pass
               (`elbo_samples` passes averaged): the paper's NLL.
  IW NLL     = -log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x),
               K = `num_importance_samples` (He et al. 2019 use 500): a tighter
               bound on -log p(x), each sample decoded separately.
  PPL        = exp(sum of NLL / number of tokens incl. <eos>).
  MI         = I(x; z) under q, estimated per batch as
               mean_x[log q(z|x) - log (1/B) sum_x' q(z|x')], z ~ q(z|x)
               (Hoffman & Johnson 2016; He et al. 2019's estimator).
  AU         = number of latent dimensions whose posterior mode/mean varies
               across the data with variance > 0.01 (Burda et al. 2016).
"""

import json
import logging
import math
import pathlib

import keras
import numpy as np
import tensorflow as tf

from tf_vmfvae import config as config_lib
from tf_vmfvae import data
from tf_vmfvae import train_lib
from tf_vmfvae.models import layers

logger = logging.getLogger("tf_vmfvae")

ACTIVE_UNIT_THRESHOLD = 0.01


def load_trained(model_dir, checkpoint="best"):
  """Returns (model, experiment config, vocabulary) of a trained model dir."""
  model_dir = pathlib.Path(model_dir)
  path = model_dir / train_lib.BEST_MODEL
  if checkpoint == "last":
    state = json.loads((model_dir / train_lib.STATE_FILE).read_text())
    path = model_dir / state["checkpoint"]
  if not path.is_file():
    raise FileNotFoundError(f"No trained model at {path}: train into {model_dir} first.")
  model = keras.saving.load_model(path, safe_mode=True, compile=False)
  experiment = config_lib.ExperimentConfig.load(model_dir / train_lib.CONFIG_FILE)
  vocabulary = data.Vocabulary.load(model_dir / train_lib.VOCAB_FILE)
  return model, experiment, vocabulary


class _Evaluator:
  """Batch computations of one model, as tf.functions."""

  def __init__(self, model, num_importance_samples, sample_chunk):
    self.model = model
    self.latent = model.latent
    self.k = num_importance_samples
    self.chunk = max(1, min(sample_chunk, num_importance_samples))

  def _recon(self, batch, z):
    logits = self.model.decoder(self.model.decoder_inputs(batch, z), training=False)
    return layers.sequence_nll(batch["tokens"], logits)

  @tf.function(reduce_retracing=True)
  def elbo_terms(self, batch):
    """recon [B], kl [B], mode [B, d], mi-batch-estimate scalar."""
    if self.latent is None:
      recon = self._recon(batch, None)
      zeros = tf.zeros_like(recon)
      return recon, zeros, tf.zeros([tf.shape(recon)[0], 1]), tf.constant(0.0)
    features = self.model.encoder(batch["tokens"], training=False)["features"]
    params = self.latent.posterior_parameters(features)
    z = self.latent.sample(params)
    recon = self._recon(batch, z)
    kl = self.latent.kl_divergence(params)
    # MI: log q(z_i|x_i) - log mean_j q(z_i|x_j), z_i ~ q(z|x_i).
    log_q_own = self.latent.posterior_log_prob(z, params)
    log_q_all = self.latent.posterior_log_prob(z[:, None, :], params)  # [B, B]
    batch_size = tf.cast(tf.shape(z)[0], tf.float32)
    log_q_agg = tf.reduce_logsumexp(log_q_all, axis=1) - tf.math.log(batch_size)
    mi = tf.reduce_mean(log_q_own - log_q_agg)
    return recon, kl, self.latent.mode(params), mi

  @tf.function(reduce_retracing=True)
  def _log_weights(self, batch, params, num):
    z = self.latent.sample(params, num_samples=num)  # [n, B, d]
    n, b = tf.shape(z)[0], tf.shape(z)[1]
    tiled = {k: tf.reshape(tf.tile(v[None], tf.concat([[n], tf.ones_like(tf.shape(v))], 0)),
                           tf.concat([[n * b], tf.shape(v)[1:]], 0))
             for k, v in batch.items()}
    recon = tf.reshape(self._recon(tiled, tf.reshape(z, [n * b, -1])), [n, b])
    return -recon + self.latent.prior_log_prob(z) - self.latent.posterior_log_prob(z, params)

  def iw_nll(self, batch):
    if self.latent is None:
      return None
    features = self.model.encoder(batch["tokens"], training=False)["features"]
    params = self.latent.posterior_parameters(features)
    chunks, remaining = [], self.k
    while remaining > 0:
      num = min(self.chunk, remaining)
      chunks.append(self._log_weights(batch, params, tf.constant(num)))
      remaining -= num
    log_w = tf.concat(chunks, axis=0)
    return -(tf.reduce_logsumexp(log_w, axis=0) - math.log(self.k))


def evaluate(model_dir, split="test", num_importance_samples=500, elbo_samples=1,
             batch_size=50, sample_chunk=50, data_dir=None, checkpoint="best",
             max_batches=None, progress=True):
  """Evaluates a trained model on a split; returns a metrics dict.

  Args:
    model_dir: a directory written by `train_lib.train`.
    split: "train", "valid" or "test".
    num_importance_samples: K of the importance-weighted NLL (0: skip it).
    elbo_samples: passes of the one-sample ELBO, averaged.
    batch_size: sentences per batch (also the MI estimate's batch).
    sample_chunk: importance samples decoded together.
    data_dir: overrides the training run's data_dir.
    checkpoint: "best" or "last".
    max_batches: evaluate only this many batches (quick looks), or None.
    progress: show a progress bar.
  """
  model, experiment, vocabulary = load_trained(model_dir, checkpoint)
  data_config = experiment.data
  if data_dir is not None:
    data_config = config_lib.DataConfig(**{**data_config.__dict__, "data_dir": data_dir})
  splits = data.load_sentence_splits(data_config, vocabulary=vocabulary, splits=[split])
  dataset = splits.dataset(split, batch_size, bucket_width=0)
  evaluator = _Evaluator(model, num_importance_samples, sample_chunk)
  num_batches = math.ceil(len(splits.ids[split]) / batch_size)
  if max_batches:
    dataset, num_batches = dataset.take(max_batches), min(num_batches, max_batches)
  bar = keras.utils.Progbar(num_batches, unit_name="batch") if progress else None

  totals = {"recon": 0.0, "kl": 0.0, "iw_nll": 0.0, "mi": 0.0}
  sentences = tokens = batches = 0
  modes = []
  for batch in dataset:
    recon = kl = 0.0
    for _ in range(elbo_samples):
      r, k, mode, mi = evaluator.elbo_terms(batch)
      recon, kl = recon + r.numpy() / elbo_samples, kl + k.numpy() / elbo_samples
    totals["recon"] += float(np.sum(recon))
    totals["kl"] += float(np.sum(kl))
    totals["mi"] += float(mi)
    modes.append(mode.numpy())
    if num_importance_samples:
      iw = evaluator.iw_nll(batch)
      totals["iw_nll"] += float(np.sum(iw.numpy() if iw is not None else recon))
    sentences += int(batch["tokens"].shape[0])
    tokens += int(tf.math.count_nonzero(batch["tokens"]))
    batches += 1
    if bar:
      bar.update(batches)

  elbo_nll = totals["recon"] + totals["kl"]
  metrics = {
      "split": split, "sentences": sentences, "tokens": tokens,
      "latent": model.latent_kind, "decoder_mode": model.decoder_mode,
      "nll": elbo_nll / sentences, "recon": totals["recon"] / sentences,
      "kl": totals["kl"] / sentences, "ppl": math.exp(elbo_nll / tokens),
  }
  if num_importance_samples:
    metrics.update(iw_nll=totals["iw_nll"] / sentences,
                   iw_ppl=math.exp(totals["iw_nll"] / tokens),
                   num_importance_samples=num_importance_samples)
  if model.latent is not None:
    variance = np.var(np.concatenate(modes), axis=0)
    metrics.update(mi=totals["mi"] / batches,
                   active_units=int(np.sum(variance > ACTIVE_UNIT_THRESHOLD)),
                   latent_dim=int(variance.shape[0]))
  return metrics


def format_table(metrics):
  """A readable two-column table of the metrics."""
  rows = [("split", metrics["split"]), ("sentences", metrics["sentences"]),
          ("tokens (incl. <eos>)", metrics["tokens"]),
          ("model", f"{metrics['latent']} / {metrics['decoder_mode']}"),
          ("NLL (ELBO) per sentence", f"{metrics['nll']:.2f}"),
          ("  reconstruction", f"{metrics['recon']:.2f}"),
          ("  KL", f"{metrics['kl']:.2f}"), ("PPL (ELBO)", f"{metrics['ppl']:.2f}")]
  if "iw_nll" in metrics:
    k = metrics["num_importance_samples"]
    rows += [(f"NLL (IW, K={k})", f"{metrics['iw_nll']:.2f}"),
             (f"PPL (IW, K={k})", f"{metrics['iw_ppl']:.2f}")]
  if "mi" in metrics:
    rows += [("mutual information I(x;z)", f"{metrics['mi']:.3f}"),
             ("active units", f"{metrics['active_units']} / {metrics['latent_dim']}")]
  width = max(len(r[0]) for r in rows)
  return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
