"""SemiDiscreteOT against POT's exact discrete OT (ot.emd) on small problems with many source samples.

N source points with mass 1/N each and 5 targets with masses that are multiples of 1/N: the
exact plan is then a vertex of the transportation polytope with 0/1 rows (every point goes
to one target), which the semi-discrete assignment should reproduce up to Monte-Carlo error.
POT is an optional test dependency (``pip install POT``, in the ``test`` extra).
"""

import pytest
import torch

from schedalg.ot import SemiDiscreteOT

ot = pytest.importorskip("ot", reason="POT (pip install POT) is needed for the exact discrete OT reference")

N = 2000
WEIGHTS = torch.tensor([0.1, 0.15, 0.2, 0.25, 0.3], dtype=torch.float64)  # x N = 200, 300, 400, 500, 600


def problem():
    g = torch.Generator().manual_seed(0)
    targets = torch.randn(5, 2, generator=g, dtype=torch.float64) * 1.5
    z = torch.randn(N, 2, generator=g, dtype=torch.float64)
    cost = torch.cdist(z, targets).square()
    plan = torch.as_tensor(ot.emd(torch.full((N,), 1.0 / N, dtype=torch.float64).numpy(), WEIGHTS.numpy(),
                                  cost.numpy()))
    rows = (plan > 1e-12).sum(1)
    assert bool((rows == 1).all())  # an integral vertex: one target per point
    return targets, z, cost, plan.argmax(1), float((plan * cost).sum())


def test_gaussian_source_fit_matches_emd_up_to_monte_carlo_error():
    targets, z, cost, exact, exact_cost = problem()
    solver = SemiDiscreteOT(targets, WEIGHTS, batch_size=1 << 16)
    solver.fit(tol=0.01, metric="l1", samples=1 << 14, max_samples=1 << 18, seed=1)
    index = solver.assign(z)
    agreement = float((index == exact).double().mean())
    per_point = cost[torch.arange(N), index]
    # The population cells hold N w_j +- sqrt(N w_j (1 - w_j)) ~ +-20 of these points, so a few
    # percent of them sit on the other side of the empirical boundaries.
    assert agreement > 0.9, agreement
    # emd adapts to this sample, the population cells do not: the mean costs differ by the
    # sampling error of a mean of N costs (4 standard errors here)
    standard_error = float(per_point.std()) / N**0.5
    assert abs(float(per_point.mean()) - exact_cost) < 4 * standard_error
    # strong duality on a large fresh sample: F_n(h) = mean cost(z, T z) - sum_j (m_j - w_j) h_j
    # exactly, and the correction is small at the fitted potential
    fresh = torch.randn(1 << 17, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    fresh_index = solver.assign(fresh)
    primal = float(torch.cdist(fresh, targets).square()[torch.arange(fresh.shape[0]), fresh_index].mean())
    masses = torch.bincount(fresh_index, minlength=5).double() / fresh.shape[0]
    correction = float(((masses - WEIGHTS) * solver.potential).sum())
    assert solver.dual(fresh) == pytest.approx(primal - correction, abs=1e-9)
    assert abs(correction) < 0.01 * primal
    assert primal == pytest.approx(exact_cost, rel=0.05)  # W_2^2 of the population vs of this sample


def test_empirical_source_fit_reproduces_emd():
    """With the N points themselves as the source (resampled), the fit solves the discrete problem."""
    targets, z, _, exact, _ = problem()

    def empirical(n, generator):
        return z[torch.randint(0, N, (n,), generator=generator)]

    solver = SemiDiscreteOT(targets, WEIGHTS, batch_size=1 << 16)
    solver.fit(tol=0.01, metric="l1", samples=1 << 14, max_samples=1 << 18, seed=1, source=empirical)
    agreement = float((solver.assign(z) == exact).double().mean())
    # only points within the fit's tolerance of an empirical boundary can differ
    assert agreement > 0.98, agreement
