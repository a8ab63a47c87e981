"""A map that is not a flow map, for tests that must tell one from the other."""

from __future__ import annotations

import torch


class Perturbed:
    """The oracle plus ``eps (t - s)^power sin(x)``: still ``X_{s,s} = id``, no longer the flow map
    (for ``power = 1`` its diagonal velocity is off by ``eps sin(x)`` too)."""

    def __init__(self, oracle, eps=0.05, power=1):
        self.oracle, self.eps, self.power, self.schedule = oracle, eps, power, oracle.schedule

    def __call__(self, x, s, t):
        gap = (torch.as_tensor(t, dtype=x.dtype) - torch.as_tensor(s, dtype=x.dtype)).reshape(-1, 1)
        return self.oracle(x, s, t) + self.eps * gap**self.power * torch.sin(x)

    def velocity(self, x, t):
        return self.oracle.velocity(x, t) + (self.eps * torch.sin(x) if self.power == 1 else 0.0)
