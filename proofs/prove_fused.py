"""The identity fused programs rely on (schedalg.sampling.Program.fuse), checked on the package's programs.

For a prepared denoiser whose outputs are affine in a raw network output ``F_k``,
``x0_hat = a_x X + a_p F_k`` and ``eps_hat = e_x X + e_p F_k``, every solver's step is a linear
combination of states and predictions, so substituting these maps gives a program on raw outputs
alone. Here both programs the package computes (:attr:`Sampler.plan` and :meth:`Sampler.program`)
are run by :meth:`Program.trace` on SymPy symbols: the state ``x`` and one symbol ``F_j`` per
network call. Their final states are linear forms in ``x, F_0, F_1, ...``; the residual's
coefficients vanish up to the rounding of the float64 weights (the fused weights are sums of
products, correctly rounded), and a wrong substitution leaves coefficients of order 1.
"""

import pytest
import sympy as sp
import torch

import schedalg as sa
from schedalg.models import NetworkDenoiser
from schedalg.sampling import SOLVERS, Sampler, TimeGrid

x = sp.Symbol("x", real=True)


class _Symbolic:
    """The affine maps of ``prepared`` with the j-th network call's output the symbol F_j."""

    def __init__(self, prepared):
        self.prepared, self.calls = prepared, 0

    def _output(self) -> sp.Symbol:
        self.calls += 1
        return sp.Symbol(f"F_{self.calls - 1}", real=True)

    def raw(self, state, k):
        return self._output()

    def __call__(self, state, k):
        a_x, a_p, e_x, e_p = self.prepared.affine_output(k)
        out = self._output()
        return a_x * state + a_p * out, e_x * state + e_p * out


def _residual(sampler: Sampler) -> tuple[float, float]:
    fused, plain = sampler.program(), sampler.plan
    assert fused.fused and not plain.fused
    draws = sp.symbols(f"xi_0:{plain.noise_draws}", real=True) if plain.noise_draws else ()
    a = sp.expand(fused.trace(x, _Symbolic(sampler.prepared), draws))
    b = sp.expand(plain.trace(x, _Symbolic(sampler.prepared), draws))
    symbols = sorted((a - b).free_symbols | b.free_symbols, key=str)
    residual = max(abs(float((a - b).coeff(s))) for s in symbols)
    scale = max(abs(float(b.coeff(s))) for s in symbols)
    return residual, scale


@pytest.mark.parametrize("solver", sorted(SOLVERS))
@pytest.mark.parametrize("grid_on", ["linear", "vp_cosine"])  # own schedule / converted denoiser
def test_fused_program_is_the_plain_program_with_the_output_map_substituted(solver, grid_on):
    schedule = sa.schedules.linear()
    denoiser = NetworkDenoiser(lambda z, t: z, schedule, "eps")
    grid_schedule = getattr(sa.schedules, grid_on)()
    ends = (0.05, 0.95) if grid_on == "linear" else (0.95, 0.05)
    sampler = Sampler(denoiser, TimeGrid.log_snr_uniform(grid_schedule, 3, t_start=ends[0], t_end=ends[1]), solver)
    residual, scale = _residual(sampler)
    assert residual <= 1e-13 * scale, (residual, scale)


def test_the_affine_maps_are_the_denoisers_own_outputs():
    """x0_hat = a_x X + a_p raw(X), eps_hat = e_x X + e_p raw(X) for the wrapper and the converted wrapper."""
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2).double()
    denoiser = NetworkDenoiser(lambda z, t: net(torch.cat([z, t[:, None]], 1)), sa.schedules.linear(), "v")
    for sampler in (Sampler(denoiser, TimeGrid.uniform(sa.schedules.linear(), 4, t_start=0.1, t_end=0.9)),
                    Sampler(denoiser, TimeGrid.uniform(sa.schedules.vp_cosine(), 4, t_start=0.9, t_end=0.1))):
        state = torch.randn(5, 2, dtype=torch.float64)
        for k in range(len(sampler.plan.eval_grid)):
            a_x, a_p, e_x, e_p = sampler.prepared.affine_output(k)
            out = sampler.prepared.raw(state, k)
            x0, eps = sampler.prepared(state, k)
            torch.testing.assert_close(x0, a_x * state + a_p * out, rtol=1e-13, atol=1e-13)
            torch.testing.assert_close(eps, e_x * state + e_p * out, rtol=1e-13, atol=1e-13)
        sampler.prepared.finish()
