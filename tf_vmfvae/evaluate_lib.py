"""Evaluation of trained models: ELBO, importance-weighted NLL, PPL, MI, AU.

Works for NVRNN (sentences; tokens include <eos>) and NVDM (documents;
tokens are word counts), through their shared analysis API
(`encode_features`, `reconstruction_nll`, `num_tokens`). For each x:
  ELBO NLL   = E_q[-log p(x|z)] + KL(q(z|x) || p(z)), one z ~ q per pass
               (`elbo_samples` passes averaged): the paper's NLL.
  IW NLL     = -log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x),
               K = `num_importance_samples` (He et al. 2019 use 500): a tighter
               bound on -log p(x), each sample decoded separately.
  PPL        = exp(sum of NLL / number of tokens incl. <eos>).
  MI, AU     = mutual information I(x; z) (batch estimate, <= log B:
               "mi_cap") and active units: `tf_vmfvae.latent.usage`.
  paper NLL  = the paper's protocol with n draws of q (n = 3 in its code;
               by default n = the model's own (`protocol_draws`) when > 1, else
               off), through the model's `reconstruction_nll_of_draws` plus
               KL(q || p). NVRNN: -log p(x | mean of the n draws): the mean
               (unnormalised, as the paper's code decodes it) is less noisy
               than one draw, yet the KL charged is one draw's: NOT a bound
               on -log p(x), reported only to compare. NVDM: the
               reconstruction averaged over the n draws: an unbiased
               estimate of the ELBO, so a valid bound in expectation.
"""

import dataclasses
import datetime
import logging
import math
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tf_vmfvae import runs
from tf_vmfvae.latent import usage

logger = logging.getLogger("tf_vmfvae")

# K of a quick look: a tighter bound than the ELBO in about as long as 20 ELBO
# passes. Final numbers use FINAL_IMPORTANCE_SAMPLES (He et al. 2019's K).
DEFAULT_IMPORTANCE_SAMPLES = 20
FINAL_IMPORTANCE_SAMPLES = 500


class Progress:
  """Reports a long pass: a Keras progress bar on a terminal, else a log line
  after the first batch (the time left, early), at least every `interval`
  seconds and at the end, with examples done, tokens/s and the time left.

  Example:
  >>> report = Progress("ELBO", total_batches=2, stream=None)
  >>> report.update(examples=50, tokens=1000.0)
  >>> report.update(examples=50, tokens=1000.0)
  >>> report.examples, report.batches
  (100, 2)
  """

  def __init__(self, what, total_batches, interval=10.0, stream=sys.stdout):
    self.what, self.total = what, total_batches
    self.interval = interval
    self.batches = self.examples = 0
    self.tokens = 0.0
    self._start = self._last = time.perf_counter()
    self._bar = None
    if stream is not None and stream.isatty():
      print(what)
      self._bar = keras.utils.Progbar(total_batches, unit_name="batch",
                                      stateful_metrics=["examples", "tokens/s"])

  def update(self, examples, tokens):
    self.batches += 1
    self.examples += examples
    self.tokens += tokens
    now = time.perf_counter()
    rate = self.tokens / max(now - self._start, 1e-9)
    if self._bar is not None:
      self._bar.update(self.batches, values=[("examples", self.examples),
                                             ("tokens/s", rate)])
    elif now - self._last >= self.interval or self.batches in (1, self.total):
      self._last = now
      left = (now - self._start) / self.batches * (self.total - self.batches)
      logger.info("%s: %d / %d batches, %d examples, %.0f tokens/s, %s left",
                  self.what.rstrip(":"),
                  self.batches, self.total, self.examples, rate,
                  datetime.timedelta(seconds=round(left)))


def corpus_perplexity(nll, tokens):
  """exp(sum NLL / sum N): every token weighs the same (the PTB definition).

  Example:
  >>> round(corpus_perplexity([2.0, 6.0], [1, 3]), 4)   # exp(8 / 4)
  7.3891
  """
  return math.exp(float(np.sum(nll)) / float(np.sum(tokens)))


def document_perplexity(nll, tokens):
  """exp(mean_d NLL_d / N_d): every document weighs the same (Miao et al. 2016).

  Example:
  >>> round(document_perplexity([2.0, 6.0], [1, 3]), 4)  # exp((2/1 + 6/3) / 2)
  7.3891
  >>> round(document_perplexity([2.0, 3.0], [1, 3]), 4)  # exp((2 + 1) / 2)
  4.4817
  """
  return math.exp(float(np.mean(np.asarray(nll, np.float64) / np.asarray(tokens, np.float64))))


def _tile(batch, n):
  """Repeats every tensor of a batch n times along a new leading axis, flattened."""
  def tile(v):
    multiples = tf.concat([[n], tf.ones_like(tf.shape(v))], 0)
    return tf.reshape(tf.tile(v[None], multiples), tf.concat([[-1], tf.shape(v)[1:]], 0))
  return {k: tile(v) for k, v in batch.items()}


class Evaluator:
  """Batch computations of one model (NVRNN or NVDM), as tf.functions.

  Args:
    model: a trained NVRNN or NVDM.
    num_importance_samples: K of `iw_nll`.
    sample_chunk: importance samples decoded together.
  """

  def __init__(self, model, num_importance_samples, sample_chunk):
    self.model = model
    self.latent = model.latent
    self.k = num_importance_samples
    self.chunk = max(1, sample_chunk)

  @tf.function(reduce_retracing=True)
  def elbo_terms(self, batch):
    """recon [B], kl [B], posterior mean [B, d], tokens [B], batch MI estimate."""
    tokens = self.model.num_tokens(batch)
    if self.latent is None:
      recon = self.model.reconstruction_nll(batch, None)
      return (recon, tf.zeros_like(recon), tf.zeros([tf.shape(recon)[0], 1]), tokens,
              tf.constant(0.0))
    params = self.latent.posterior_parameters(self.model.encode_features(batch))
    z = self.latent.sample(params)
    recon = self.model.reconstruction_nll(batch, z)
    kl = self.latent.kl_divergence(params)
    mi = usage.mutual_information(self.latent, params, z)
    return recon, kl, self.latent.posterior_mean(params), tokens, mi

  @tf.function(reduce_retracing=True)
  def paper_recon(self, batch, num):
    """The paper protocol's reconstruction term [B], with `num` draws of q."""
    params = self.latent.posterior_parameters(self.model.encode_features(batch))
    return self.model.reconstruction_nll_of_draws(
        batch, self.latent.sample(params, num_samples=num))

  @tf.function(reduce_retracing=True)
  def _log_weights(self, batch, params, num):
    z = self.latent.sample(params, num_samples=num)  # [n, B, d]
    n, b = tf.shape(z)[0], tf.shape(z)[1]
    recon = self.model.reconstruction_nll(_tile(batch, n), tf.reshape(z, [n * b, -1]))
    recon = tf.reshape(recon, [n, b])
    return -recon + self.latent.prior_log_prob(z) - self.latent.posterior_log_prob(z, params)

  def iw_nll(self, batch):
    """-log (1/K) sum_k w_k per example, [B]; None without a latent."""
    if self.latent is None:
      return None
    params = self.latent.posterior_parameters(self.model.encode_features(batch))
    chunks, remaining = [], self.k
    while remaining > 0:
      num = min(self.chunk, remaining)
      chunks.append(self._log_weights(batch, params, tf.constant(num)))
      remaining -= num
    log_w = tf.concat(chunks, axis=0)
    return -(tf.reduce_logsumexp(log_w, axis=0) - math.log(self.k))


def evaluate(model_dir, split="test", num_importance_samples=DEFAULT_IMPORTANCE_SAMPLES,
             elbo_samples=1, batch_size=50, sample_chunk=50, data_dir=None,
             checkpoint="best", max_batches=None, progress=True, paper_estimator_samples=None):
  """Evaluates a trained NVRNN or NVDM on a split; returns a metrics dict.

  Args:
    model_dir: a run directory written by `train_lib.train`.
    split: "train", "valid" or "test".
    num_importance_samples: K of the importance-weighted NLL (0: skip it).
      20 by default (a quick look); 500 for final numbers (He et al.).
    elbo_samples: passes of the one-sample ELBO, averaged.
    batch_size: examples per batch (also the MI estimate's batch).
    sample_chunk: importance samples decoded together.
    data_dir: overrides the training run's data_dir.
    checkpoint: "best" or "last".
    max_batches: evaluate only this many batches (quick looks), or None.
    progress: report progress: a progress bar on a terminal, else a log line
      at least every 10 s (batches, examples, tokens/s, ETA).
    paper_estimator_samples: n > 0 also reports "paper_nll" / "paper_ppl",
      the paper's protocol with n draws (see the module docstring); None:
      the model's `protocol_draws` if > 1, else off; 0: off.

  Returns:
    A dict. Per example: "nll" (ELBO), "recon", "kl", "iw_nll"; "ppl" and
    "iw_ppl" = exp(total NLL / total tokens) (corpus level: the definition
    of the paper's code for PTB, Table 3, and for its own v-NVDM rows of
    Table 4); for documents also "ppl_doc" and "iw_ppl_doc" =
    exp(mean_d NLL_d / N_d) (Miao et al. 2016's definition, that of the
    G-NVDM rows Table 4 quotes from them); "mi", "active_units".
  """
  model, experiment = runs.load_trained(model_dir, checkpoint)
  if data_dir is not None:
    experiment = dataclasses.replace(
        experiment, data=dataclasses.replace(experiment.data, data_dir=data_dir))
  splits = runs.load_data(experiment, model_dir, splits=[split])
  evaluator = Evaluator(model, num_importance_samples, sample_chunk)
  if paper_estimator_samples is None:
    paper_estimator_samples = model.protocol_draws if model.protocol_draws > 1 else 0

  def batches(bucket_width, what):
    """The split's batches, reporting progress when asked."""
    dataset = splits.dataset(split, batch_size, bucket_width=bucket_width)
    num_batches = int(dataset.cardinality())
    if max_batches:
      dataset, num_batches = dataset.take(max_batches), min(num_batches, max_batches)
    report = Progress(what, num_batches) if progress else None
    for batch in dataset:
      yield batch
      if report:
        report.update(int(tf.shape(batch[next(iter(batch))])[0]),
                      float(tf.reduce_sum(model.num_tokens(batch))))

  if progress:
    plan = "the ELBO"
    if model.latent is not None:
      if num_importance_samples:
        plan += f", then the importance-weighted NLL with K={evaluator.k}"
      if evaluator.k < FINAL_IMPORTANCE_SAMPLES:
        plan += f" (--num_importance_samples={FINAL_IMPORTANCE_SAMPLES} for final numbers)"
    logger.info("Scoring %s of %s: %s.", split, model_dir, plan)
  # ELBO, MI and AU on batches in file order: the MI estimate takes each
  # batch as a sample of the aggregate posterior, so it must not be sorted.
  recon, kl, tokens, means, mis, paper_recon = [], [], [], [], [], []
  for batch in batches(0, "ELBO, mutual information, active units:"):
    passes = [evaluator.elbo_terms(batch) for _ in range(elbo_samples)]
    recon.append(np.mean([p[0].numpy() for p in passes], axis=0))
    kl.append(np.mean([p[1].numpy() for p in passes], axis=0))
    if paper_estimator_samples and model.latent is not None:
      paper_recon.append(
          evaluator.paper_recon(batch, tf.constant(paper_estimator_samples)).numpy())
    means.append(passes[0][2].numpy())
    tokens.append(passes[0][3].numpy())
    mis.append(float(passes[0][4]))

  # The importance-weighted bound decodes every example K times: batches of
  # similar lengths (the training buckets) waste less of that on padding.
  # `max_batches` keeps file order, so that both passes see the same examples.
  iw, iw_tokens = [], []
  if num_importance_samples and model.latent is not None:
    bucket_width = (experiment.data.bucket_width
                    if experiment.family == "nvrnn" and not max_batches else 0)
    for batch in batches(bucket_width, f"Importance-weighted NLL, K={evaluator.k}:"):
      iw.append(evaluator.iw_nll(batch).numpy())
      iw_tokens.append(model.num_tokens(batch).numpy())

  recon, kl, tokens = np.concatenate(recon), np.concatenate(kl), np.concatenate(tokens)
  nll = recon + kl
  metrics = {
      "split": split, "family": experiment.family, "examples": int(len(nll)),
      "tokens": int(tokens.sum()), "latent": model.latent_kind,
      "nll": float(nll.mean()), "recon": float(recon.mean()), "kl": float(kl.mean()),
      "ppl": corpus_perplexity(nll, tokens),
  }
  if paper_recon:
    paper_nll = np.concatenate(paper_recon) + kl
    metrics.update(paper_nll=float(paper_nll.mean()),
                   paper_ppl=corpus_perplexity(paper_nll, tokens),
                   paper_estimator_samples=paper_estimator_samples,
                   trained_protocol_draws=model.protocol_draws)
    if experiment.family == "nvdm":
      metrics["paper_ppl_doc"] = document_perplexity(paper_nll, tokens)
  if experiment.family == "nvrnn":
    metrics["decoder_mode"] = model.decoder_mode
  else:
    metrics["ppl_doc"] = document_perplexity(nll, tokens)
  if num_importance_samples:
    # Without a latent variable log p(x) is exact: the bound is the NLL.
    iw, iw_tokens = (np.concatenate(iw), np.concatenate(iw_tokens)) if iw else (nll, tokens)
    if len(iw) != len(nll) or iw_tokens.sum() != tokens.sum():
      raise RuntimeError(f"The importance-weighted pass saw {len(iw)} examples and "
                         f"{iw_tokens.sum()} tokens, the ELBO pass {len(nll)} and "
                         f"{tokens.sum()}.")
    metrics.update(iw_nll=float(iw.mean()), iw_ppl=corpus_perplexity(iw, iw_tokens),
                   num_importance_samples=num_importance_samples)
    if experiment.family == "nvdm":
      metrics["iw_ppl_doc"] = document_perplexity(iw, iw_tokens)
  if model.latent is not None:
    means = np.concatenate(means)
    prior_variance = model.latent.prior_coordinate_variance()
    metrics.update(mi=float(np.mean(mis)), mi_cap=math.log(batch_size),
                   active_units=usage.count_active_units(means, prior_variance),
                   active_unit_threshold=usage.ACTIVE_UNIT_THRESHOLD * prior_variance,
                   latent_dim=int(means.shape[-1]))
  return metrics


def format_table(metrics):
  """A readable two-column table of the metrics."""
  unit = "sentence" if metrics["family"] == "nvrnn" else "document"
  model = metrics["latent"] + (f" / {metrics['decoder_mode']}" if "decoder_mode" in metrics
                               else "")
  rows = [("split", metrics["split"]), (f"{unit}s", metrics["examples"]),
          ("tokens" + (" (incl. <eos>)" if unit == "sentence" else ""), metrics["tokens"]),
          ("model", model),
          (f"NLL (ELBO) per {unit}", f"{metrics['nll']:.2f}"),
          ("  reconstruction", f"{metrics['recon']:.2f}"),
          ("  KL", f"{metrics['kl']:.2f}"),
          ("PPL (ELBO, corpus: exp(sum NLL / sum N))", f"{metrics['ppl']:.2f}")]
  if "ppl_doc" in metrics:
    rows.append(("PPL (ELBO, per-doc: exp(mean NLL_d / N_d))", f"{metrics['ppl_doc']:.2f}"))
  if "iw_nll" in metrics:
    k = metrics["num_importance_samples"]
    rows += [(f"NLL (IW, K={k})", f"{metrics['iw_nll']:.2f}"),
             (f"PPL (IW, K={k}, corpus)", f"{metrics['iw_ppl']:.2f}")]
    if "iw_ppl_doc" in metrics:
      rows.append((f"PPL (IW, K={k}, per-doc)", f"{metrics['iw_ppl_doc']:.2f}"))
  if "paper_nll" in metrics:
    n = metrics["paper_estimator_samples"]
    what = (f"paper protocol: mean of {n} z decoded, one KL; not a bound" if unit == "sentence"
            else f"paper protocol: reconstruction averaged over {n} z")
    rows += [(f"NLL ({what})", f"{metrics['paper_nll']:.2f}"),
             (f"PPL ({what}, corpus)", f"{metrics['paper_ppl']:.2f}")]
    if "paper_ppl_doc" in metrics:
      rows.append((f"PPL ({what}, per-doc)", f"{metrics['paper_ppl_doc']:.2f}"))
  if "mi" in metrics:
    rows += [(f"mutual information I(x;z) (batch estimate, <= log B = "
              f"{metrics['mi_cap']:.2f})", f"{metrics['mi']:.3f}"),
             ("active units", f"{metrics['active_units']} / {metrics['latent_dim']}")]
  width = max(len(r[0]) for r in rows)
  return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
