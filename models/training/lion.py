"""The Lion optimiser (Chen et al., "Symbolic Discovery of Optimization Algorithms", 2023, Algorithm 2).

PHNet (Efremyan et al. 2024, §5.1) trains with Lion. Per parameter θ with gradient g and
momentum m (zero at the start), one step with learning rate η and weight decay λ is::

    c = β1·m + (1 − β1)·g              interpolation of momentum and gradient
    θ ← θ − η·(sign(c) + λ·θ)          every coordinate moves by exactly η (plus decay)
    m ← β2·m + (1 − β2)·g              the momentum tracks the gradient more slowly

Only the sign of ``c`` is used, so the update does not depend on the loss's scale, only on
the direction of its gradient; the authors suggest a learning rate 3–10× below AdamW's.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor


class Lion(torch.optim.Optimizer):
    """Lion with decoupled weight decay; ``betas`` = (β1, β2) as in the module docstring."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], lr: float = 1e-4,
                 betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0) -> None:
        if lr <= 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Lion needs lr > 0 and betas in [0, 1), got lr={lr}, betas={betas}")
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), decay = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                momentum = self.state[p].setdefault("momentum", torch.zeros_like(p))
                direction = momentum.lerp(p.grad, 1 - beta1).sign_()  # sign(β1·m + (1 − β1)·g)
                p.mul_(1 - lr * decay).add_(direction, alpha=-lr)
                momentum.lerp_(p.grad, 1 - beta2)
        return loss
