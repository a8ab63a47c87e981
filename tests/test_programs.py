"""Solvers as programs: one interpreter, one registry (user tableaux), torch.compile, live registers, orders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import schedalg as sa
from schedalg.denoisers import GaussianMixtureDenoiser
from schedalg.models import NetworkDenoiser
from schedalg.sampling import SOLVERS, Sampler, SolverError, Tableau, TimeGrid, get_solver, per_sample_normal, \
    register_solver

MEANS = torch.tensor([[1.0, 0.5], [-1.0, 0.0], [0.2, -1.2]], dtype=torch.float64)


def _mlp_denoiser(schedule, prediction="velocity"):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.SiLU(), torch.nn.Linear(16, 2)).double()
    return NetworkDenoiser(lambda x, t: net(torch.cat([x, t[:, None].to(x.dtype)], 1)), schedule, prediction)


def test_third_and_fourth_order_methods_are_told_apart_on_a_gaussian_mixture():
    """On a Gaussian mixture (x0_hat is not linear in x) the fitted slopes are 3 and 4, not both 4+."""
    schedule = sa.schedules.linear()
    denoiser = GaussianMixtureDenoiser(schedule, MEANS, 0.3)
    state = per_sample_normal((8, 2), 0, dtype=torch.float64) * 0.98
    reference = Sampler(denoiser, TimeGrid.uniform(schedule, 512, t_start=0.02, t_end=0.95), "rk4")(
        state, scale_noise=False)  # error ~1e-12, below the smallest error fitted (~1e-8)
    steps = [8, 16, 32, 64]
    slopes = {}
    for solver in ("heun3", "rk3", "rk4", "rk4_38"):
        errors = [float((Sampler(denoiser, TimeGrid.uniform(schedule, n, t_start=0.02, t_end=0.95), solver)(
            state, scale_noise=False) - reference).abs().max()) for n in steps]
        slopes[solver] = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert all(2.7 < slopes[s] < 3.3 for s in ("heun3", "rk3")), slopes
    assert all(slopes[s] > 3.6 for s in ("rk4", "rk4_38")), slopes


def test_a_user_tableau_is_a_solver_in_a_few_lines():
    """Ralston's second-order method, registered as data; its order is read from the order conditions."""
    ralston = Tableau(c=(0, "2/3"), a=((), ("2/3",)), b=("1/4", "3/4"), label="ralston")
    cls = register_solver("ralston_test", ralston)
    try:
        assert cls.order == 2 and SOLVERS["ralston_test"] is cls and cls.__doc__
        schedule = sa.schedules.linear()
        denoiser = GaussianMixtureDenoiser(schedule, MEANS, 0.3)
        grid = TimeGrid.uniform(schedule, 8, t_start=0.05, t_end=0.95)
        sampler = Sampler(denoiser, grid, "ralston_test")
        assert sampler.nfe == 16 and len(sampler.plan.eval_grid) == 17  # nodes at 2/3 of each step inserted
        x = per_sample_normal((4, 2), 0, dtype=torch.float64)
        fine = Sampler(denoiser, TimeGrid.uniform(schedule, 64, t_start=0.05, t_end=0.95), "rk4")(x, scale_noise=False)
        errors = [float((Sampler(denoiser, TimeGrid.uniform(schedule, n, t_start=0.05, t_end=0.95), "ralston_test")(
            x, scale_noise=False) - fine).abs().max()) for n in (16, 32)]
        assert 1.7 < np.log2(errors[0] / errors[1]) < 2.3, errors
        # the lazy and augmented stacks take it from the same registry
        assert sa.lazy.lazy_nfe("ralston_test", 3) == 6 and "ralston_test" in sa.augmented.SOLVERS
        with pytest.raises(SolverError, match="replace=True"):
            register_solver("ralston_test", ralston)
        with pytest.raises(SolverError, match="replace=True"):
            register_solver("euler", ralston)
        assert register_solver("ralston_test", ralston, replace=True).order == 2
    finally:
        SOLVERS.pop("ralston_test", None)


def test_a_class_registered_twice_keeps_both_names():
    from schedalg.sampling.solvers import DDIM

    cls = register_solver("ddim_alias_test", DDIM, order=1)
    try:
        assert SOLVERS["ddim"] is DDIM and DDIM.name == "ddim" and cls.name == "ddim_alias_test"
        assert issubclass(cls, DDIM)
    finally:
        SOLVERS.pop("ddim_alias_test", None)


def test_bad_tableaux_and_registrations_are_explained():
    with pytest.raises(SolverError, match="row j holding j entries"):
        Tableau(c=(0, 1), a=((), (1, 0)), b=(0.5, 0.5))
    with pytest.raises(SolverError, match="c = A 1"):
        Tableau(c=(0, "1/2"), a=((), (1,)), b=(0, 1))
    with pytest.raises(SolverError, match="sum b = 1"):
        register_solver("inconsistent_test", Tableau(c=(0,), a=((),), b=("1/2",)))
    with pytest.raises(SolverError, match="Solver subclass or a Tableau"):
        register_solver("nothing_test", object())
    assert "inconsistent_test" not in SOLVERS and "nothing_test" not in SOLVERS


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_every_solver_compiles_to_one_graph(solver):
    """torch.compile traces a whole run of the sampler's module (fused program) without a graph break."""
    schedule = sa.schedules.linear()
    sampler = Sampler(_mlp_denoiser(schedule), TimeGrid.log_snr_uniform(schedule, 3, t_start=0.05, t_end=0.95),
                      solver)
    module = sampler.module()
    x = per_sample_normal((4, 2), 0, dtype=torch.float64)
    draws = sampler.draws(x, seed=0)
    with torch.no_grad():
        eager = module(x, draws)
        torch._dynamo.reset()
        explained = torch._dynamo.explain(module)(x, draws)
    module.prepared.finish()
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
    assert torch.equal(eager, sampler(x, draws=draws, scale_noise=False))


def _peak_live(program, prepared, x, draws=None) -> int:
    """Most tensors the registers hold at once (at each network call and at each step's end; draws not counted)."""
    regs = program.start(x, draws)
    noise = set(range(program.noise_base, program.noise_base + program.noise_draws))
    counts = []

    def count() -> None:
        counts.append(sum(r is not None for j, r in enumerate(regs) if j not in noise))

    class Watched:
        def raw(self, state, k, **cond):
            count()
            return prepared.raw(state, k, **cond)

        def __call__(self, state, k, **cond):
            count()
            return prepared(state, k, **cond)

    for i in range(program.n_steps):
        program.run_step(i, regs, Watched(), {})
        count()
        program.end_step(i, regs)
    return max(counts)


@pytest.mark.parametrize("solver, live", [("euler", 3), ("heun", 4), ("rk4", 6), ("dpmpp_2m", 4), ("dpmpp_3m", 5)])
def test_the_loop_keeps_only_the_state_predictions_and_memory(solver, live):
    """After each step: x_i, x_{i+1}, the raw outputs still needed (stages), and the solver's memory."""
    schedule = sa.schedules.linear()
    sampler = Sampler(_mlp_denoiser(schedule), TimeGrid.log_snr_uniform(schedule, 6, t_start=0.05, t_end=0.95),
                      solver)
    program = sampler.program()
    with torch.no_grad():
        peak = _peak_live(program, sampler.prepared, per_sample_normal((4, 2), 0, dtype=torch.float64))
    sampler.prepared.finish()
    assert peak <= live, peak
    assert all(len(program.memory(i)) <= get_solver(solver).order - 1 for i in range(program.n_steps))


def _peak_buffers(program) -> int:
    """Most state-sized buffers alive at once, counted at every instruction when its output exists and its
    inputs are not yet dropped (the moment a combination is formed), from the program's drop lists. A
    combination of one register with weight 1 is that register (no new buffer); draws are not counted."""
    noise = set(range(program.noise_base, program.noise_base + program.noise_draws))
    root: dict[int, int] = {}
    live = {0}
    peak = 1
    for i, block in enumerate(program.code):
        for op in block:
            kind = op[0]
            if kind == 2 and len(op[2]) == 1 and op[2][0][0] == 1.0:
                root[op[1]] = root.get(op[2][0][1], op[2][0][1])
            written = (op[1],) if kind == 2 else (op[3],) if kind == 1 else (op[3], op[4])
            live.update(written)
            peak = max(peak, len({root.get(r, r) for r in live if r not in noise}))
            live.difference_update(op[-1])
        live.difference_update(program.ends[i][3])
    return peak


@pytest.mark.parametrize("solver, peak", [("euler", 3), ("heun", 4), ("rk4", 6), ("dpmpp_2m", 4), ("dpmpp_3m", 5),
                                          ("ipndm", 6)])
def test_a_combination_is_formed_with_only_the_state_predictions_and_memory_alive(solver, peak):
    """Issue 18: at most the state, the step's predictions, the solver's memory and the output being formed.
    E.g. DPM-Solver++(2M): x_i, D_{i-1}, D_i and x_{i+1} = 4; a multistep prediction kept for the next step is
    formed once and read as it is in its own step, so its raw output is dropped when it is formed."""
    schedule = sa.schedules.linear()
    sampler = Sampler(_mlp_denoiser(schedule), TimeGrid.log_snr_uniform(schedule, 6, t_start=0.05, t_end=0.95),
                      solver)
    program = sampler.program()
    assert program.fused
    assert _peak_buffers(program) == peak


def test_a_prediction_that_is_the_next_state_is_formed_in_a_fused_program():
    """DDIM's last step to alpha = 1 is x_{i+1} = x0_hat itself: the fused program must form it from F."""
    schedule = sa.schedules.vp_cosine()
    grid = TimeGrid.uniform(schedule, 4, t_start=0.9, t_end=0.0)
    sampler = Sampler(_mlp_denoiser(schedule, "eps"), grid, "ddim")
    x = per_sample_normal((4, 2), 0, dtype=torch.float64)
    assert sampler.program().fused
    fused = sampler(x)
    sampler.fuse = False
    torch.testing.assert_close(fused, sampler(x), rtol=1e-12, atol=1e-12)


def test_lazy_samplers_run_any_tableau_of_the_registry():
    """Standardized Gaussian data: the lazy ODE's right side is 0, so RK4 there is exact like Euler."""
    from schedalg.lazy import Standardization, lazy_nfe, lazy_ode_sample
    from schedalg.denoisers import GaussianDenoiser

    mean = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    var = torch.tensor([0.5, 2.0, 1.5], dtype=torch.float64)
    den = GaussianDenoiser(sa.schedules.linear(), mean, var)
    std = Standardization.given(mean, var.sqrt())
    noise = per_sample_normal((5, 3), 1, dtype=torch.float64)
    out = {s: lazy_ode_sample(den, noise, std, steps=3, solver=s) for s in ("euler", "rk4", "heun3")}
    torch.testing.assert_close(out["rk4"], mean + var.sqrt() * noise, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out["heun3"], out["euler"], rtol=1e-10, atol=1e-10)
    assert lazy_nfe("rk4", 3) == 12
