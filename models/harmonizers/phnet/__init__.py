"""PHNet (Efremyan et al. 2024): patch-based normalization harmonization.

``blocks`` (patch grids, the PN block, the PFE, the SE bottleneck), ``network`` (the
official-compatible :class:`PHNet` in both configurations) and ``stage`` (the pipeline stage).
"""
from models.harmonizers.phnet.network import PHNet

__all__ = ["PHNet"]
