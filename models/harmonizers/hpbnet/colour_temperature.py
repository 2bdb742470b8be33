"""HPBNet's colour-temperature correction (Wang et al., CGF 2023, §3.3, Eq. 3).

The generator may shift the whole image, background included, to reach its
manifold of harmonious portraits. Eq. 3 measures that shift on the visible
background, where the answer is known (the input composite), and undoes it on the
foreground::

    Result = Σ[I_s · (1 − M)] / Σ[Î · (1 − M)] × Î

per colour channel and per image, I_s the input composite, Î the network's output
and M the foreground mask. The paper then keeps the input's background, so the
gains are applied to the foreground only: ``M·(g·Î) + (1 − M)·I_s``. ``EPS`` in both
sums makes an all-foreground image (no visible background) keep g = 1.

Two guards the paper's converged generator does not need but a network in training
does: Î is clamped to [0, 1] in the sum (an unclamped output can sum to nearly zero
or below on the background, and the ratio then explodes), and g is kept within
``GAIN_RANGE`` (a colour cast beyond a factor of 4 is a broken output, not a white
balance).
"""
from __future__ import annotations

from torch import Tensor

EPS = 1e-6
GAIN_RANGE = (0.25, 4.0)


def background_gains(composite: Tensor, output: Tensor, mask: Tensor) -> Tensor:
    """g of Eq. 3 (N×3×1×1): the input's background colour sums over the output's."""
    background = 1 - mask
    wanted = (composite * background).sum((2, 3), keepdim=True)
    got = (output.clamp(0, 1) * background).sum((2, 3), keepdim=True)
    return ((wanted + EPS) / (got + EPS)).clamp(*GAIN_RANGE)


def colour_temperature_correction(output: Tensor, composite: Tensor, mask: Tensor) -> Tensor:
    """Eq. 3 applied to the foreground of ``output``; the background is the composite's. All N×C×H×W,
    images in [0, 1] (the result is clamped there), ``mask`` N×1×H×W soft in [0, 1]."""
    corrected = output * background_gains(composite, output, mask)
    return (mask * corrected + (1 - mask) * composite).clamp(0, 1)
