r"""Fig. 3 of the paper: the KL and the spread of a spherical latent against kappa.

Usage:
  python -m tf_vmfvae.experiments.kl_geometry --output_dir=docs/figures --scale=full

For d = 50 and 100 and a range of concentrations kappa, the KL to the
uniform prior on the sphere and the mean cosine between a sample and the
mean direction, for the von Mises-Fisher (closed form: A_d(kappa)) and the
Power Spherical distribution (closed form: kappa / (kappa + d - 1), De Cao &
Aziz 2020) at the same kappa; the cosine is also estimated from samples
(TFP's samplers), with its standard error. Writes kl_geometry.csv and
kl_geometry.png and prints the table.
"""

import math
import pathlib

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tf_vmfvae.experiments import common
from tf_vmfvae.latent import kl

DIMS = (50, 100)
SETTINGS = {  # scale -> (concentrations, samples per point)
    "small": (np.geomspace(1.0, 400.0, 8), 2000),
    "full": (np.geomspace(1.0, 1000.0, 25), 20000),
}
_DISTRIBUTIONS = {"vmf": tfp.distributions.VonMisesFisher,
                  "power_spherical": tfp.distributions.PowerSpherical}


def closed_form(distribution, dim, concentration):
  """(KL to the uniform prior, E[mu^T z]) in closed form."""
  if distribution == "vmf":
    return (kl.vmf_kl_to_uniform(dim, concentration),
            float(kl.mean_resultant_length(dim, tf.constant(concentration, tf.float64))))
  return (kl.power_spherical_kl_to_uniform(dim, concentration),
          concentration / (concentration + dim - 1.0))


def sampled_cosine(distribution, dim, concentration, num_samples, seed):
  """(mean, standard error) of mu^T z over `num_samples` draws."""
  mean_direction = tf.one_hot(0, dim, dtype=tf.float64)
  q = _DISTRIBUTIONS[distribution](mean_direction, tf.constant(concentration, tf.float64))
  cosines = q.sample(num_samples, seed=tf.constant(seed, tf.int32))[:, 0].numpy()
  return float(cosines.mean()), float(cosines.std(ddof=1) / math.sqrt(num_samples))


def run(output_dir, scale="small"):
  """Writes kl_geometry.csv and .png into `output_dir`; returns the rows."""
  common.check_scale(scale)
  concentrations, num_samples = SETTINGS[scale]
  rows = []
  for distribution in _DISTRIBUTIONS:
    for dim in DIMS:
      for i, concentration in enumerate(concentrations):
        divergence, cosine = closed_form(distribution, dim, float(concentration))
        mean, error = sampled_cosine(distribution, dim, float(concentration), num_samples,
                                     seed=[dim, i])
        rows.append({"distribution": distribution, "dim": dim,
                     "concentration": float(concentration), "kl": divergence,
                     "mean_cosine": cosine, "sampled_mean_cosine": mean,
                     "sampled_standard_error": error, "samples": num_samples})
  output_dir = pathlib.Path(output_dir)
  common.write_csv(output_dir / "kl_geometry.csv", rows)
  _plot(rows, output_dir / "kl_geometry.png")
  print(format_table(rows, scale))
  return rows


def _plot(rows, path):
  plt = common.pyplot()
  figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  for distribution, style in (("vmf", "-"), ("power_spherical", "--")):
    for dim in DIMS:
      points = [r for r in rows if r["distribution"] == distribution and r["dim"] == dim]
      kappa = [r["concentration"] for r in points]
      label = f"{'vMF' if distribution == 'vmf' else 'Power Spherical'}, d={dim}"
      left.plot(kappa, [r["kl"] for r in points], style, label=label)
      line, = right.plot(kappa, [r["mean_cosine"] for r in points], style, label=label)
      right.errorbar(kappa, [r["sampled_mean_cosine"] for r in points],
                     yerr=[3 * r["sampled_standard_error"] for r in points], fmt="o",
                     markersize=3, color=line.get_color())
  for axis, title in ((left, "KL(q || uniform) [nats]"), (right, "E[cos(z, mu)]")):
    axis.set_xscale("log")
    axis.set_xlabel("concentration kappa")
    axis.set_title(title)
    axis.grid(alpha=0.3)
  right.legend(fontsize=8, title="lines: closed form; dots: samples (3 SE)",
               title_fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def format_table(rows, scale):
  lines = [f"kl_geometry (scale={scale}, {rows[0]['samples']} samples a point)",
           f"{'distribution':<16} {'d':>4} {'kappa':>8} {'KL':>9} {'E[cos]':>8} "
           f"{'sampled':>8} {'SE':>7}"]
  for r in rows:
    lines.append(f"{r['distribution']:<16} {r['dim']:>4} {r['concentration']:>8.2f} "
                 f"{r['kl']:>9.3f} {r['mean_cosine']:>8.4f} {r['sampled_mean_cosine']:>8.4f} "
                 f"{r['sampled_standard_error']:>7.4f}")
  return "\n".join(lines)


if __name__ == "__main__":
  common.main_for(run)
