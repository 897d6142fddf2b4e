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

__all__ = ["__version__"]
