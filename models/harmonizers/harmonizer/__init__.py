"""Harmonizer (Ke et al., ECCV 2022): white-box filter arguments regressed from a small copy.

``network`` (the official-compatible EfficientNet-B0 regressor), ``lite`` (our
EfficientNet-Lite0 variant), ``filters`` (the six filters), ``filter_apply``
(the fast full-resolution application), ``stage`` (the pipeline stage) and
``lut_export`` (the chain as a 3D LUT).
"""
