"""HPBNet, the portrait-background harmonizer of Wang et al. (CGF 2023); importing registers ``hpbnet``."""
from models.harmonizers.hpbnet import stage  # noqa: F401
