"""tf_vmfvae: variational autoencoders for text with hyperspherical latents.

A Keras 3 / TensorFlow model zoo implementing Xu & Durrett (2018),
"Spherical Latent Spaces for Stable Variational Autoencoders".
The layers wrap TensorFlow Probability distributions, so Keras must run on
its TensorFlow backend.
"""

import keras

from tf_vmfvae.version import __version__

if keras.backend.backend() != "tensorflow":
  raise ImportError(
      "tf_vmfvae needs the TensorFlow Keras backend, but KERAS_BACKEND is "
      f"{keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow.")

__all__ = ["__version__"]
