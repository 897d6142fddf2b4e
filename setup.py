"""Installs tf_vmfvae. The version lives in tf_vmfvae/version.py only."""

import pathlib
import re

import setuptools

_HERE = pathlib.Path(__file__).parent
_VERSION = re.search(r'__version__ = "([^"]+)"',
                     (_HERE / "tf_vmfvae" / "version.py").read_text()).group(1)

# A set known to install and import together on Python 3.11. Without the
# [tf] extra, TFP cannot be imported.
_INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "tensorflow-probability[tf]==0.25.0",
    "tf-keras==2.21.0",
    "keras==3.15.1",
    "tensorflow-text==2.21.1",
    "absl-py==2.5.1",
    "tensorboard==2.21.0",  # TF 2.21 no longer brings it; the trainer logs to it.
    "numpy",
    "matplotlib",  # Figures of bench/ and the experiments.
]

_EXTRAS = {
    "test": ["pytest>=8", "scipy", "mpmath", "tensorflow-serving-api==2.21.0",
             "nbclient", "nbformat", "ipykernel"],  # The notebooks are executed in CI.
}

setuptools.setup(
    name="tf_vmfvae",
    version=_VERSION,
    description=("Keras/TensorFlow variational autoencoders for text with "
                 "hyperspherical (von Mises-Fisher) latents."),
    long_description=(_HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # configs/*.flags ship as package data: `--flagfile=ptb` works from a wheel too.
    packages=setuptools.find_packages(include=["tf_vmfvae", "tf_vmfvae.*"]) + [
        "tf_vmfvae.configs"],
    package_dir={"tf_vmfvae.configs": "configs"},
    package_data={"tf_vmfvae.configs": ["*.flags"]},
    install_requires=_INSTALL_REQUIRES,
    extras_require=_EXTRAS,
)
