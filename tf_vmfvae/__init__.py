"""tf_vmfvae: variational autoencoders for text with hyperspherical latents.

A Keras 3 / TensorFlow model zoo implementing Xu & Durrett (2018),
"Spherical Latent Spaces for Stable Variational Autoencoders".
The layers wrap TensorFlow Probability distributions, so Keras must run on
its TensorFlow backend (checked when `tf_vmfvae.latent` is imported).
Importing the package itself, or `tf_vmfvae.config`, imports no Keras.
"""

import os

from tf_vmfvae.version import __version__

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's BFC allocator on the CPU keeps freed buffers for reuse; the
# default allocator returns the softmax's 28 MB buffers to the system and pays
# page faults on each new one (a 704 x 10K logits matmul: 36 ms against 17 on
# one thread; docs/PERFORMANCE.md). Read once, before TensorFlow's first
# allocation: importing this package before running any op makes it apply.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

__all__ = ["__version__"]
