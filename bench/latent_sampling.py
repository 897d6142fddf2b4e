"""Times one sample + KL of each latent layer: batch 128, d=50, graph mode.

Usage:
  python bench/latent_sampling.py [--batch 128] [--dim 50] [--repeats 200]

Prints the median and 10th-90th percentile time per call of each latent
(vMF k=80 with Wood's rejection sampler and with the loop-free table
sampler, the table sampler under XLA, Power Spherical k=80, Gaussian) and
their ratios to the Gaussian, all measured in this one run. The machine
is shared and noisy: compare ratios, not absolute times across runs.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from tf_vmfvae import latent  # pylint: disable=g-import-not-at-top


def _time(fn, inputs, repeats):
  fn(inputs)  # Trace and warm up.
  fn(inputs)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    out = fn(inputs)
    _ = out.numpy()
    times.append(time.perf_counter() - start)
  return np.array(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--dim", type=int, default=50)
  parser.add_argument("--features", type=int, default=400)
  parser.add_argument("--repeats", type=int, default=200)
  args = parser.parse_args()

  layers = {
      "vmf": latent.VonMisesFisherLatent(args.dim, concentration=80.0, seed=0),
      "vmf_table": latent.VonMisesFisherLatent(args.dim, concentration=80.0, seed=0,
                                               sampler="table"),
      "vmf_table_xla": latent.VonMisesFisherLatent(args.dim, concentration=80.0, seed=0,
                                                   sampler="table"),
      "power_spherical": latent.PowerSphericalLatent(args.dim, concentration=80.0, seed=0),
      "gaussian": latent.GaussianLatent(args.dim, seed=0),
  }
  inputs = tf.random.normal([args.batch, args.features], seed=0)
  print(f"batch={args.batch} latent_dim={args.dim} features={args.features} "
        f"repeats={args.repeats} tf={tf.__version__} threads(intra)="
        f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'}")
  medians = {}
  for name, layer in layers.items():

    @tf.function(jit_compile=name.endswith("_xla"))
    def sample_and_kl(h, layer=layer):
      parameters = layer.posterior_parameters(h)
      z = layer.sample(parameters)
      kl = layer.kl_divergence(parameters)
      return tf.reduce_sum(z) + tf.reduce_sum(kl)

    times = _time(sample_and_kl, inputs, args.repeats) * 1e6
    medians[name] = np.median(times)
    print(f"{name:16s} median {medians[name]:8.1f} us   "
          f"p10 {np.percentile(times, 10):8.1f} us   p90 {np.percentile(times, 90):8.1f} us")
  for name in layers:
    if name != "gaussian":
      print(f"ratio {name + '/gaussian':28s} {medians[name] / medians['gaussian']:.2f}")


if __name__ == "__main__":
  main()
