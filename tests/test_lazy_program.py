"""The lazy point-mass SDE as a program: the same samples as the hand-written loop it replaced.

``reference_point_mass`` below is the loop ``schedalg.lazy.integrate_point_mass`` ran before it
became a :class:`~schedalg.sampling.Program` written with the registry's Euler-Maruyama step
(issue 18), kept here as the oracle:

    y_1 = h_0/(1 - a_0) x0'(xi_0) + sqrt(h_0) xi_0,   y_{i+1} = y_i + h_i/(1 - a_i) (x0' - y_i) + sqrt(h_i) xi_i.

The program writes the same step as ``(1 - h k) y + h k x0' + sqrt(h) xi`` with ``k = 1/(1 - a)``
(Euler-Maruyama's ``(1 + tau A) X + tau B x0_hat + sqrt(2 e tau) xi`` with ``A = -k``, ``B = k``,
``e = e* = 1/2``): the same real number, rounded differently (about one unit in the last place
per step), so float64 samples agree to 1e-12 and float32 ones to float32 precision.
"""

import pytest
import torch

import schedalg as sa
from schedalg.denoisers import GaussianMixtureDenoiser
from schedalg.lazy import LazyDenoiser, Standardization, integrate_point_mass, point_mass_sample

F64 = torch.float64


def reference_point_mass(prepared, noise, **cond):
    """The hand-written Euler-Maruyama loop of the point-mass SDE (before issue 18)."""
    table = prepared.tables(noise)
    a = table["u"]
    h = [a[i + 1] - a[i] for i in range(len(a) - 1)]
    drift = [h[i] / (1 - a[i]) for i in range(len(h))]
    root = [step.sqrt() for step in h]
    x0, _ = prepared.at_point_mass(noise[0], 0, **cond)
    y = drift[0] * x0 + root[0] * noise[0]
    for i in range(1, len(h)):
        x0, _ = prepared(y, i, **cond)
        y = y + drift[i] * (x0 - y) + root[i] * noise[i]
    return y


def _mixture(dim, seed, schedule):
    g = torch.Generator().manual_seed(seed)
    centres = 2 * torch.randn(3, dim, generator=g, dtype=F64)
    return GaussianMixtureDenoiser(schedule, centres, 0.05), centres.mean(0), centres.std(0) + 0.3


def _network(dim, seed, schedule):
    """A random velocity MLP: unlike the exact posterior, its answer at the point mass depends on
    the limit input (the first draw) that the loop must feed it there."""
    from schedalg.models import NetworkDenoiser

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(dim + 1, 16), torch.nn.SiLU(), torch.nn.Linear(16, dim)).double()
    den = NetworkDenoiser(lambda x, t: net(torch.cat([x, t.reshape(-1, 1).expand(x.shape[0], 1).to(x)], 1)),
                          schedule, "velocity", "t", check_finite="off")
    return den, torch.linspace(-1, 1, dim, dtype=F64), torch.linspace(0.5, 2, dim, dtype=F64)


CASES = [  # (schedule, per-channel std, grid or steps, dtype)
    ("linear", False, 1, F64), ("linear", True, 7, F64), ("vp_cosine", True, 12, F64),
    ("linear", True, [0.0, 0.05, 0.3, 0.31, 0.7, 0.9, 1.0], F64), ("trigonometric", False, 5, F64),
    ("linear", True, 9, torch.float32), ("network", True, 6, F64),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{'channel' if c[1] else 'scalar'}-{c[2]}-{c[3]}")
def test_point_mass_program_gives_the_hand_written_loops_samples(case):
    name, per_channel, grid, dtype = case
    make = _network if name == "network" else _mixture
    den, mean, std = make(4, 3, sa.schedules.linear() if name == "network" else getattr(sa.schedules, name)())
    std = Standardization.given(mean, std if per_channel else float(std.mean()))
    lazy = LazyDenoiser(den, std, "optimal_sde")
    values = lazy.uniform_grid(grid) if isinstance(grid, int) else lazy._check_grid(grid)
    noise = torch.randn(values.numel() - 1, 64, 4, generator=torch.Generator().manual_seed(5), dtype=F64).to(dtype)
    prepared = lazy.prepare(values)
    ours, theirs = integrate_point_mass(prepared, noise), reference_point_mass(prepared, noise)
    assert ours.dtype == dtype and ours.shape == theirs.shape
    assert float(theirs.abs().max()) > 1.0  # the samples are not trivially small
    tolerance = 1e-12 if dtype == F64 else 1e-5  # measured: 3.5e-15 and 5.4e-7
    assert float((ours - theirs).abs().max()) <= tolerance
    if isinstance(grid, int):
        assert float((point_mass_sample(den, noise, std) - std.invert(theirs)).abs().max()) <= 10 * tolerance


def test_point_mass_program_comes_from_the_registry(monkeypatch):
    """The step is the registry's Euler-Maruyama step: replacing its weights changes the samples."""
    from schedalg.sampling import SOLVERS

    den, mean, std = _mixture(2, 4, sa.schedules.linear())
    std = Standardization.given(mean, std)
    noise = torch.randn(6, 8, 2, generator=torch.Generator().manual_seed(6), dtype=F64)
    before = point_mass_sample(den, noise, std)
    step = SOLVERS["euler_maruyama"].step_weights
    monkeypatch.setattr(SOLVERS["euler_maruyama"], "step_weights",
                        staticmethod(lambda tau, a, b, e, **k: step(tau, a, b, 0.0 * e, **k)))
    after = point_mass_sample(den, noise, std)
    assert float((after - before).abs().max()) > 0.1
