"""The benchmark harness (benchmarks/): peer adapters, NFE counting, reference, reports."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.testing import assert_close

import schedalg as sa
from benchmarks import _derivation, _memory, _peers, _report, _schedalg_runs
from benchmarks._problem import Counter, Problem


@pytest.fixture(scope="module")
def problem() -> Problem:
    return Problem(4, components=100, rtol=1e-6)


def test_k_diffusion_sampling_loads_by_path_and_counts_calls():
    k = _peers.k_sampling()
    sigmas = k.get_sigmas_karras(4, 0.002, 80.0, device="cpu").double()
    assert sigmas.shape == (5,) and float(sigmas[-1]) == 0.0
    model = Counter(lambda x, sigma: torch.zeros_like(x))  # data = {0}: exact denoiser is 0
    out = k.sample_heun(model, 80.0 * torch.ones(2, 3, dtype=torch.float64), sigmas, disable=True)
    assert model.calls == 2 * 4 - 1
    assert_close(out, torch.zeros(2, 3, dtype=torch.float64))  # Dirac data: every sampler is exact


def test_reference_converges_and_peers_count_exactly(problem):
    """Errors of k-diffusion's Euler fall with NFE; every run reports its counted NFE."""
    errors = {}
    for budget in (5, 20):
        runs = {r.sampler + r.grid: r for r in _peers.k_diffusion_runs(problem, budget, only=("euler", "heun"))}
        euler = runs["eulerkarras(rho=7)"]
        assert euler.nfe == budget
        assert runs["heunkarras(rho=7)"].nfe == budget - 1 if budget % 2 == 0 else budget
        errors[budget] = euler.error
    assert errors[20] < errors[5]


def test_diffusers_and_flow_matching_runs(problem):
    rows = list(_peers.diffusers_runs(problem, 5, only=("UniPCMultistep(bh2,p3)|linspace",
                                                         "EDMDPMSolverMultistep(2M)|karras")))
    assert len(rows) == 2 and all(r.nfe == 5 for r in rows)
    assert all(math.isfinite(r.error) and r.error > 0 for r in rows)
    fm = {r.sampler: r for r in _peers.flow_matching_runs(problem, 10)}
    assert fm["euler"].nfe == 10 and fm["midpoint"].nfe == 10 and fm["rk4"].nfe == 8


@pytest.mark.parametrize("method, ours, options, steps, budget", [
    ("midpoint", "midpoint", {}, 5, 10), ("heun3", "heun3", {}, 3, 9),
    ("rk4", "rk4_38", {"final_heun3": False}, 2, 8),  # torchdiffeq's "rk4" is Kutta's 3/8 rule
])
def test_schedalg_equals_flow_matching_on_the_same_algorithm(problem, method, ours, options, steps, budget):
    """Same tableau, linear path, uniform t in both libraries: same endpoint."""
    fm = {r.sampler: r for r in _peers.flow_matching_runs(problem, budget)}[method]
    run = _schedalg_runs._run(problem, problem.denoiser(sa.schedules.linear()),
                              sa.sampling.TimeGrid.uniform(sa.schedules.linear(), steps),
                              sa.sampling.get_solver(ours, **options), "linear/uniform", label=ours)
    assert run.nfe == fm.nfe == budget
    assert run.error == pytest.approx(fm.error, rel=1e-6)


def test_calibrated_run_is_chosen_on_separate_noise_and_measured_on_the_evaluation_noise(problem):
    calibration = _schedalg_runs.selection_noise(problem, 8)
    assert not torch.equal(calibration[:4], problem.noise) and not torch.equal(calibration[:4],
                                                                                  problem.calibration_noise[:4])
    (run,) = _schedalg_runs.calibrated_runs(problem, 10, calibration=calibration, rhos=(1.0, 1.5))
    assert run.nfe <= 10 and run.note.startswith("calibrated on 8 separate samples")
    assert math.isfinite(run.error) and run.error > 0
    rows = [dict(run.row(), budget=10), {"system": "diffusers", "sampler": "c", "grid": "h", "nfe": 10,
                                         "error": 2 * run.error, "budget": 10}]
    (item,) = _report.headline(rows, budgets=(10,))
    assert item["calibrated"]["sampler"] == run.sampler and item["calibrated_ratio"] == pytest.approx(0.5)


def test_log_snr_times():
    linear = sa.schedules.linear()
    times = _schedalg_runs.log_snr_times(linear, 6)
    assert times.shape == (7,) and float(times[0]) == 0.0 and float(times[-1]) == 1.0
    lam = linear.compile().log_snr(times[1:-1])
    assert_close(torch.diff(lam), torch.full((4,), float(lam[1] - lam[0]), dtype=torch.float64))
    assert _schedalg_runs.log_snr_times(linear, 2) is None
    clipped = _schedalg_runs.log_snr_times(linear, 6, from_noise_end=False)
    assert float(linear.compile().log_snr(clipped[:1])) == pytest.approx(_schedalg_runs.LAM_LOW)


def _rows():
    return [
        {"system": "schedalg", "sampler": "a", "grid": "g", "nfe": 5, "error": 0.1, "budget": 5},
        {"system": "schedalg", "sampler": "b", "grid": "g", "nfe": 4, "error": 0.05, "budget": 5},
        {"system": "diffusers", "sampler": "c", "grid": "h", "nfe": 5, "error": 0.2, "budget": 5},
        {"system": "k-diffusion", "sampler": "d", "grid": "h", "nfe": 10, "error": 0.01, "budget": 10},
        {"system": "schedalg", "sampler": "e", "grid": "g", "nfe": 10, "error": 0.03, "budget": 10},
    ]


def test_report_tables_and_plot(tmp_path):
    head = {item["budget"]: item for item in _report.headline(_rows(), budgets=(5, 10))}
    assert head[5]["schedalg"]["sampler"] == "b" and head[5]["peer"]["sampler"] == "c"
    assert head[5]["ratio"] == pytest.approx(0.25)
    assert head[10]["ratio"] == pytest.approx(3.0)
    meta = {"problem": "p", "command": "c", "batch": 1, "seed": 0, "seconds": 1.0}
    text = _report.markdown(_rows(), meta)
    assert "| 5 |" in text and "0.25" in text
    _report.plot(_rows(), tmp_path / "q.png")
    assert (tmp_path / "q.png").stat().st_size > 1000
    json.dumps(_rows())


def test_derivation_rows_time_schedalg_and_the_naive_route():
    (row,) = _derivation.derivation_rows(repeats=1, naive_budget=10.0, only=("ve",))
    assert row["schedule"] == "ve" and row["naive_status"] == "ok"
    assert 0 < row["cached_s"] <= row["cold_s"]
    assert row["naive_over_cached"] == pytest.approx(row["naive_sympy_solve_s"] / row["cached_s"])


def test_memory_rows_show_chunking_bounds_memory():
    rows = _memory.memory_rows((20_000,), chunk=1024)
    assert [r["chunk_size"] for r in rows] == [1024, 20_000]
    # one chunk of 20k: logits and weights of 256 x 20k float64 (~40 MiB each) must show up
    assert rows[1]["peak_growth_mib"] > 60
    assert rows[0]["peak_growth_mib"] < rows[1]["peak_growth_mib"] / 2


def test_suite_smoke_every_system_counts_and_the_summary_has_the_ratio():
    """The plan suite on a tiny problem (40 digits, batch 8, NFE 5): every system's NFE fits, rows summarise."""
    from benchmarks import _suite

    assert not set(_suite.TUNING) & set(_suite.HELD_OUT)
    narrow = dict(rhos=(1.0,), grids=("power",), solvers=("heun", "ipndm"), teacher_steps=16,
                  schedules={"linear": sa.schedules.linear()})
    rows = _suite.run_problem("edm/digits", 8, 8, (5,), lambda message: None, components=40, plan_options=narrow)
    systems = {r["system"] for r in rows}
    assert {"schedalg auto", "schedalg README", "k-diffusion", "diffusers", "flow_matching",
            "iPNDM reference"} <= systems
    assert all(r["nfe"] <= 5 and r["error"] == r["error"] for r in rows)
    (item,) = _suite.summary(rows)
    assert item["ratio"] == item["auto"] / item["best_peer"] and 0 < item["planning_cost"] <= 10_000
    assert "edm/digits" in _suite.markdown([item], {"command": "x", "batch": 8, "calibration_batch": 8,
                                                    "seconds": 1.0})


def test_suite_reference_stops_at_the_given_end():
    """``SuiteProblem.reference(..., end=)`` solves to that end (benchmarks/dpmpp3m.py's log-SNR grids stop
    just inside the linear path's data end): a fine RK4 run on a grid ending there agrees with it."""
    from benchmarks import _suite
    from benchmarks.dpmpp3m import grids

    problem = _suite.make_problem("linear/digits", components=20)
    noise = torch.randn(4, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grid = grids(problem.schedule, 200)["log_snr"]
    assert grid.times[-1].item() == pytest.approx(500 / 501)  # level 0.002, inside the data end t = 1
    alpha, sigma = grid.alpha.tolist(), grid.sigma.tolist()
    inside = problem.reference(noise, alpha[0], sigma[0], sigma[0], end=(alpha[-1], sigma[-1]))
    at_data = problem.reference(noise, alpha[0], sigma[0], sigma[0])
    fine = sa.sampling.Sampler(problem.model, grid, "rk4")(noise)
    # RK4 with 200 log-SNR steps on a 20-component mixture: error well under 1e-5 (RMS per dimension);
    # the two ends differ by O(sigma_end) = 2e-3 times the data scale, far above that.
    assert problem.error(fine, inside) < 1e-5
    assert problem.error(at_data, inside) > 1e-4
