"""Train a velocity model under the linear schedule, sample it under other schedules.

A small MLP learns the flow-matching velocity ``d x_t/dt`` of ``x_t = t x + (1 - t) eps`` on
a 2-D mixture of 8 Gaussians (CPU, well under a minute). Without retraining, the same
network then samples

1. under the linear schedule itself (Euler, probability-flow ODE),
2. under the cosine schedule ``alpha = cos(pi s/2)``, ``sigma = sin(pi s/2)`` (Euler, ODE),
3. under the point-mass Brownian bridge ``alpha = s``, ``sigma = sqrt(s (1 - s))`` with the
   optimal SDE (Euler-Maruyama), starting from the point mass ``y = 0``,

through ``x^dst_s = c(s) x^src_tau(s)`` (:func:`schedalg.convert`,
:class:`schedalg.models.ConvertedDenoiser`). Run: ``python examples/convert_schedules.py``.
"""

import math
import time

import sympy
import torch

import schedalg as sa
from schedalg.models import ConvertedDenoiser, NetworkDenoiser
from schedalg.symbolic import Diffusion

torch.set_num_threads(1)
torch.manual_seed(0)
MODES = torch.stack([torch.tensor([math.cos(a), math.sin(a)]) for a in torch.arange(8) * math.pi / 4]) * 2.0
STD = 0.15


def data(n):
    return MODES[torch.randint(0, 8, (n,))] + STD * torch.randn(n, 2)


class VelocityNet(torch.nn.Module):
    """MLP on (x, Fourier features of t)."""

    def __init__(self, width=128):
        super().__init__()
        self.freqs = torch.arange(1, 9).float() * math.pi
        self.net = torch.nn.Sequential(torch.nn.Linear(2 + 16, width), torch.nn.SiLU(), torch.nn.Linear(width, width),
                                       torch.nn.SiLU(), torch.nn.Linear(width, width), torch.nn.SiLU(),
                                       torch.nn.Linear(width, 2))

    def forward(self, x, t):
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1).expand(x.shape[0], 1)
        features = torch.cat([torch.sin(t * self.freqs.to(x.dtype)), torch.cos(t * self.freqs.to(x.dtype))], dim=1)
        return self.net(torch.cat([x, features], dim=1))


@torch.enable_grad()
def train(seconds=30.0, steps=3000):
    net = VelocityNet()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    start = time.perf_counter()
    for step in range(steps):
        x1, eps, t = data(512), torch.randn(512, 2), torch.rand(512, 1)
        xt = t * x1 + (1 - t) * eps  # linear schedule: alpha = t, sigma = 1 - t
        loss = ((net(xt, t) - (x1 - eps)) ** 2).mean()  # velocity target alpha' x1 + sigma' eps
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if time.perf_counter() - start > seconds:
            break
    print(f"trained {step + 1} steps in {time.perf_counter() - start:.1f}s, final loss {loss.item():.3f}")
    return net.double()


def quality(samples):
    """Mean distance to the nearest mode (data: ~STD*sqrt(pi/2) = 0.19) and the least-visited mode's share."""
    distance, nearest = torch.cdist(samples.float(), MODES).min(dim=1)
    shares = torch.bincount(nearest, minlength=8).float() / len(samples)
    return f"mean distance to nearest mode {distance.mean():.3f}, smallest mode share {shares.min():.3f} (ideal 0.125)"


def ode_euler(prepared, y, times):
    for i in range(len(times) - 1):
        y = y + (times[i + 1] - times[i]) * prepared.velocity(y, i)
    return y


def sde_euler_maruyama(prepared, y, times, generator):
    """y += drift ds + sqrt(2 E ds) xi; the last step adds no noise (it lands on x0_hat)."""
    last = len(times) - 2
    for i in range(len(times) - 1):
        ds = times[i + 1] - times[i]
        y = y + prepared.drift(y, i) * ds
        if i < last:
            y = y + prepared.noise_scale(i) * ds.abs().sqrt() * torch.randn(y.shape, generator=generator,
                                                                            dtype=y.dtype)
    return y


def main():
    total = time.perf_counter()
    linear, cosine, bridge = sa.schedules.linear(), sa.schedules.cosine(), sa.schedules.brownian_bridge()
    model = NetworkDenoiser(train(), linear, prediction="velocity")
    n, steps = 4000, 50
    print("data:                    ", quality(data(n).double()))

    # 1. natively under linear (t: 0 -> 1), from N(0, I)
    native = ConvertedDenoiser(model, linear)  # identity conversion: same helpers
    times = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    y = ode_euler(native.prepare(times), torch.randn(n, 2, dtype=torch.float64), times)
    print("linear ODE, 50 steps:    ", quality(y))

    # 2. under cosine (s: 1 -> 0, noise at s = 1), from N(0, I)
    conv = sa.convert(linear, cosine)
    print(f"linear -> cosine: tau(s) = {conv.tau} ({conv.kind})")
    times = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    y = ode_euler(ConvertedDenoiser(model, cosine).prepare(times), torch.randn(n, 2, dtype=torch.float64), times)
    print("cosine ODE, 50 steps:    ", quality(y))

    # 3. under the point-mass Brownian bridge with the optimal SDE, from y = 0
    conv = sa.convert(linear, bridge)
    print(f"linear -> brownian_bridge: tau(s) = {conv.tau}, c(s) = {conv.c} ({conv.kind})")
    times = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    optimal = Diffusion.optimal(bridge)
    prepared = ConvertedDenoiser(model, bridge).prepare(times[:-1], optimal)
    print(f"optimal E*(s) = {sympy.simplify(optimal.expr)}; start: drift = alpha'(0) E[x] = {prepared.drift(torch.zeros(1, 2, dtype=torch.float64), 0)}")
    y = sde_euler_maruyama(prepared, torch.zeros(n, 2, dtype=torch.float64), times, torch.Generator().manual_seed(1))
    print("bridge optimal SDE, 50 steps:", quality(y))
    print(f"total {time.perf_counter() - total:.1f}s")


if __name__ == "__main__":
    with torch.no_grad():
        main()
