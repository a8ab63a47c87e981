"""Semi-discrete OT (schedalg.ot.SemiDiscreteOT): closed-form cells, gradient check, chunking, memory, errors."""

import inspect
import json
import subprocess
import sys
import warnings

import pytest
import torch
from scipy.stats import norm

import schedalg as sa
from schedalg.ot import OTError, SemiDiscreteOT

# Quadrant problem with a closed form: targets (+-1, +-1) in 2-D, standard normal source,
# product weights P(s1) P(s2) with P(s1 = -1) = p, P(s2 = -1) = q. The cells are the shifted
# quadrants {sign(z1 - a) = s1, sign(z2 - b) = s2}, a = Phi^-1(p), b = Phi^-1(q), given by
# h = -2 a s1 - 2 b s2 (proofs/prove_ot.py derives the cell boundary from the package's score).
P, Q = 0.4, 0.45
SIGNS = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)
WEIGHTS = torch.tensor([P * Q, P * (1 - Q), (1 - P) * Q, (1 - P) * (1 - Q)], dtype=torch.float64)


def exact_quadrant_potential():
    a, b = norm.ppf(P), norm.ppf(Q)
    h = -2 * a * SIGNS[:, 0] - 2 * b * SIGNS[:, 1]
    return h - h.mean()


def test_closed_form_potential_gives_the_weights():
    solver = SemiDiscreteOT(SIGNS, WEIGHTS, batch_size=1 << 18)
    solver.potential = exact_quadrant_potential()
    masses = solver.cell_masses(1 << 20, seed=1)
    # 4 standard errors of a fraction estimated from 2^20 points
    bound = 4 * (WEIGHTS * (1 - WEIGHTS) / (1 << 20)).sqrt()
    assert bool(((masses - WEIGHTS).abs() <= bound).all()), (masses, WEIGHTS)
    solver.potential = torch.zeros(4)  # Voronoi cells (the quadrants): 1/4 each, far from the weights
    assert float((solver.cell_masses(1 << 16) - WEIGHTS).abs().max()) > 0.05


def test_fit_reaches_the_weights_within_one_percent():
    # two targets +-u in 3-D (u off the axes), weights 0.35 / 0.65: the cell of +u is the half-space
    # <z, u>/|u| > c with Phi(c) = 0.35, i.e. h_+ - h_- = -4 |u| c (proofs/prove_ot.py)
    u = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    u = 1.5 * u / u.norm()
    weights = torch.tensor([0.35, 0.65], dtype=torch.float64)
    exact = torch.tensor([1.0, -1.0], dtype=torch.float64) * 2 * 1.5 * norm.ppf(0.35)
    solver = SemiDiscreteOT(torch.stack([-u, u]), weights, batch_size=1 << 18)
    solver.fit(tol=2e-3, metric="max", samples=1 << 14, max_samples=1 << 20, seed=0)
    assert solver.converged and solver.marginal_error <= 2e-3
    # independent check on fresh points: masses within 1 % of the weights (MC error here ~0.05 %)
    masses = solver.cell_masses(1 << 21, seed=7)
    assert float(((masses - weights) / weights).abs().max()) < 0.01
    # the potential: 1 % of mass is a boundary shift of ~0.35 % / phi(c) ~ 0.01, i.e. ~0.06 in h
    torch.testing.assert_close(solver.potential, exact, atol=0.06, rtol=0)
    assert abs(float(solver.potential.mean())) < 1e-12  # recentred
    assert solver.history[-1]["samples"] > solver.history[0]["samples"]  # the sample grew


def test_fit_on_the_quadrant_problem_matches_the_closed_form():
    solver = SemiDiscreteOT(SIGNS, WEIGHTS, batch_size=1 << 18)
    solver.fit(tol=5e-3, metric="max", samples=1 << 14, max_samples=1 << 18, seed=1)
    assert solver.converged
    masses = solver.cell_masses(1 << 20, seed=7)
    assert float(((masses - WEIGHTS) / WEIGHTS).abs().max()) < 0.03
    torch.testing.assert_close(solver.potential, exact_quadrant_potential(), atol=0.1, rtol=0)


def test_gradient_matches_finite_differences_with_common_random_numbers():
    g = torch.Generator().manual_seed(3)
    targets = torch.randn(7, 3, generator=g, dtype=torch.float64)
    solver = SemiDiscreteOT(targets, torch.rand(7, generator=g, dtype=torch.float64) + 0.2, chunk_size=3)
    h0 = torch.randn(7, generator=g, dtype=torch.float64)
    solver.potential = h0
    z = torch.randn(5000, 3, generator=g, dtype=torch.float64)
    # F_n is piecewise linear in h; central differences are exact unless a point lies within
    # eps of a cell boundary (probability ~1e-6 here); roundoff of F_n ~1e-14 / eps = 1e-8
    eps = 1e-6
    numeric = torch.empty(7, dtype=torch.float64)
    for j in range(7):
        solver.potential = h0 + eps * torch.eye(7, dtype=torch.float64)[j]
        up = solver.dual(z)
        solver.potential = h0 - eps * torch.eye(7, dtype=torch.float64)[j]
        numeric[j] = (up - solver.dual(z)) / (2 * eps)
    solver.potential = h0
    analytic = solver.dual_gradient(z)
    torch.testing.assert_close(analytic, numeric, atol=1e-6, rtol=0)
    assert float(analytic.abs().max()) > 0.05  # not a trivially zero gradient
    # the dual value itself, from brute-force costs
    cost = torch.cdist(z, targets).square() - h0
    brute = float(cost.min(1).values.mean() + (solver.weights * h0).sum())
    assert solver.dual(z) == pytest.approx(brute, abs=1e-10)


def test_assign_chunked_equals_brute_force_and_transport_keeps_shape():
    g = torch.Generator().manual_seed(0)
    targets = torch.randn(301, 2, 3, generator=g)
    h = torch.randn(301, generator=g, dtype=torch.float64)
    z = torch.randn(500, 2, 3, generator=g)
    brute = (torch.cdist(z.reshape(500, 6).double(), targets.reshape(301, 6).double()).square() - h).argmin(1)
    for chunk, batch in ((7, 64), (301, 500), (1000, 1)):
        solver = SemiDiscreteOT(targets, chunk_size=chunk, batch_size=batch)
        solver.potential = h
        index = solver.assign(z)
        # float32 products: a near-tie may flip; allow none of 500 here (the margin is ~1e-6)
        assert torch.equal(index, brute), (chunk, batch)
        moved = solver.transport(z)
        assert moved.shape == (500, 2, 3) and torch.equal(moved, targets[index])


def test_fit_start_cells_are_voronoi_and_dual_increases():
    g = torch.Generator().manual_seed(1)
    targets = torch.randn(40, 4, generator=g, dtype=torch.float64) * 2
    solver = SemiDiscreteOT(targets)
    z = torch.randn(20000, 4, generator=g, dtype=torch.float64)
    before = solver.dual(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        solver.fit(tol=0.05, metric="l1", samples=4096, max_samples=1 << 16, max_steps=150)
    # concave dual: the fitted potential raises it (it is W_2^2 at the optimum)
    assert solver.dual(z) > before + 1e-3
    assert float((solver.cell_masses(1 << 16, seed=9) - solver.weights).abs().sum()) < 0.1


def test_fit_that_cannot_converge_warns_and_says_so():
    solver = SemiDiscreteOT(SIGNS, WEIGHTS)
    with pytest.warns(RuntimeWarning, match="raise max_steps"):
        solver.fit(tol=0.05, metric="l1", samples=1 << 14, max_samples=1 << 16, max_steps=2)
    assert solver.converged is False and len(solver.history) == 2


def test_unresolvable_tolerance_is_refused_before_any_work():
    solver = SemiDiscreteOT(torch.randn(1000, 8))
    with pytest.raises(OTError, match="raise max_samples to"):
        solver.fit(tol=1e-3, metric="l1", max_samples=1 << 16)


@pytest.mark.parametrize("call, match", [
    (lambda: SemiDiscreteOT(torch.randn(5)), "shape \\(N, \\*shape\\)"),
    (lambda: SemiDiscreteOT(torch.tensor([[0.0, float("nan")]])), "finite targets"),
    (lambda: SemiDiscreteOT(torch.randn(3, 2), torch.tensor([1.0, -1.0, 1.0])), "weights >= 0"),
    (lambda: SemiDiscreteOT(torch.randn(3, 2), torch.ones(4)), "one weight per target"),
    (lambda: SemiDiscreteOT(torch.randn(3, 2), chunk_size=0), "chunk_size"),
    (lambda: SemiDiscreteOT(torch.randn(3, 2)).assign(torch.randn(4, 3)), "shape \\(B, 2\\)"),
    (lambda: SemiDiscreteOT(torch.randn(3, 2)).assign(torch.ones(4, 2, dtype=torch.long)), "floating-point"),
    (lambda: SemiDiscreteOT(torch.randn(3, 2)).fit(metric="l2"), "metric among"),
    (lambda: SemiDiscreteOT(torch.randn(3, 2)).fit(ema=1.0), "ema in"),
    (lambda: SemiDiscreteOT(torch.randn(3, 2)).cell_masses(0), "n as a positive int"),
    (lambda: SemiDiscreteOT(torch.randn(3, 2)).cell_masses(10, source=lambda n, g: torch.randn(n, 5)),
     "shape \\(B, 2\\)"),
])
def test_bad_input_is_explained(call, match):
    with pytest.raises(OTError, match=match):
        call()


def test_bad_potential_is_refused():
    solver = SemiDiscreteOT(torch.randn(3, 2))
    with pytest.raises(OTError, match="finite potential of shape \\(3,\\)"):
        solver.potential = torch.zeros(2)
    with pytest.raises(OTError, match="non-finite"):
        solver.potential = torch.tensor([0.0, float("inf"), 0.0])


def test_any_source_sampler_is_allowed():
    # a uniform source on [-1, 1]^2 with two targets (+-1, 0): equal weights -> the boundary z1 = 0
    solver = SemiDiscreteOT(torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64), [0.25, 0.75])
    solver.potential = torch.tensor([-1.0, 1.0]) * 0.5  # h1 - h0 = 4 c = 1 -> boundary at c = -1/4
    masses = solver.cell_masses(1 << 16, source=lambda n, g: torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1)
    torch.testing.assert_close(masses, torch.tensor([0.375, 0.625], dtype=torch.float64), atol=0.01, rtol=0)


_MEMORY_SCRIPT = r"""
import json, sys, torch
torch.set_num_threads(1)
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from schedalg.ot import SemiDiscreteOT
chunk = int(sys.argv[1])
targets = torch.randn(100_000, 64, generator=torch.Generator().manual_seed(0))
solver = SemiDiscreteOT(targets, chunk_size=chunk, batch_size=256)
z = torch.randn(256, 64, generator=torch.Generator().manual_seed(1))
solver.assign(z[:2])
before = peak()
index = solver.assign(z)
print(json.dumps({"growth_mib": peak() - before, "n": int(index.numel())}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc (Linux only)")
def test_assign_on_1e5_targets_is_memory_bounded():
    """1e5 targets x 64 (25.6 MB): a batch of 256 against all at once would need 256 x 1e5 x 4 B
    ~ 100 MB per score matrix; chunked (2048) it is ~2 MB."""
    out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, "2048"], capture_output=True, text=True,
                         check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["n"] == 256
    assert result["growth_mib"] < 30, result


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_follows_the_targets():
    g = torch.Generator().manual_seed(0)
    targets = torch.randn(500, 8, generator=g)
    z = torch.randn(300, 8, generator=g)
    cpu = SemiDiscreteOT(targets)
    gpu = SemiDiscreteOT(targets.cuda())
    assert gpu.device.type == "cuda" and gpu.potential.device.type == "cuda"
    assert torch.equal(gpu.assign(z.cuda()).cpu(), cpu.assign(z))
    gpu.fit(tol=0.3, samples=1 << 14, max_samples=1 << 16, max_steps=200)
    assert gpu.cell_masses(1 << 14).device.type == "cuda"
    with pytest.raises(OTError, match="device"):
        gpu.assign(z)


def test_public_names_have_docstrings():
    assert sa.ot.SemiDiscreteOT is SemiDiscreteOT
    for name in sa.ot.__all__:
        obj = getattr(sa.ot, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name
