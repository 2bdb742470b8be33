"""The complete-background AdaIN harmonizer (Xing et al., ACM MM 2022); importing registers ``adain``."""
from models.harmonizers.adain import stage  # noqa: F401
