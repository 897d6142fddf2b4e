"""Model builders: NVRNN (sentence VAE) and NVDM (document VAE)."""

from tf_vmfvae.models.nvdm import NVDM
from tf_vmfvae.models.nvrnn import NVRNN

__all__ = ["NVDM", "NVRNN"]
