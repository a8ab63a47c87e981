"""Flow maps: exact oracles, the semigroup checks, conversion between schedules, losses, sampler."""

import pytest
import torch
from torch.func import jvp

import schedalg as sa
from _perturbed_map import Perturbed
from schedalg.denoisers import GaussianDenoiser
from schedalg.flowmaps import (ConvertedFlowMap, FlowMap, FlowMapError, FlowMapSampler,
                               diagonal_loss, eulerian_loss, gaussian_flow_map, identity_defect, interpolant,
                               lagrangian_loss, mixture_flow_map, progressive_loss, self_distillation_loss,
                               semigroup_defect, trajectory_loss)
from schedalg.geometry import choose_steps
from schedalg.sampling import TimeGrid

F64 = torch.float64
MEAN, VAR = torch.tensor([0.5, -1.0]), torch.tensor([0.3, 2.0])
# float64 closed forms: a few ulps of O(1) values
EXACT = 1e-12
# DOP853 at rtol = atol = 1e-10 over O(1) states and O(1) times: global error well below 1e-7
ODE = 1e-7


def _schedules():
    return [sa.schedules.linear(), sa.schedules.cosine(), sa.schedules.vp_linear()]


def _times(schedule, batch, generator, margin=1e-3):
    """(s, t) inside the domain, any order (maps run both ways)."""
    lo, hi = (float(v) for v in schedule.domain)
    width = hi - lo - 2 * margin
    return tuple(lo + margin + width * torch.rand(batch, generator=generator, dtype=F64) for _ in range(2))


def _batch(batch, generator, mean=MEAN, var=VAR):
    x0 = mean + var.sqrt() * torch.randn(batch, 2, generator=generator, dtype=F64)
    return x0, torch.randn(batch, 2, generator=generator, dtype=F64)


# ---------------------------------------------------------------- oracles


@pytest.mark.parametrize("schedule", _schedules(), ids=lambda s: s.name)
def test_gaussian_flow_map_is_the_exact_flow(schedule):
    """Identity at s = t, semigroup, d_t X = b_t(X) with b from the posterior means, and the
    package's independent closed form (GaussianDenoiser.flow) agree to float64 rounding."""
    g = torch.Generator().manual_seed(0)
    fm = gaussian_flow_map(schedule, MEAN, VAR)
    x = torch.randn(16, 2, generator=g, dtype=F64)
    s, t = _times(schedule, 16, g)
    u = _times(schedule, 16, g)[0]
    assert float(identity_defect(fm, x, s).max()) < EXACT
    assert float(semigroup_defect(fm, x, s, t, u).max()) < EXACT
    end, d_end = jvp(lambda tt: fm(x, s, tt), (t,), (torch.ones_like(t),))
    denoiser = GaussianDenoiser(schedule, MEAN, VAR)
    x0_hat, eps_hat = denoiser.posterior(end, t)
    d_alpha, d_sigma = (f(t).reshape(-1, 1) for f in (schedule.compile().d_alpha, schedule.compile().d_sigma))
    torch.testing.assert_close(d_end, d_alpha * x0_hat + d_sigma * eps_hat, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fm.velocity(end, t), d_end, rtol=1e-10, atol=1e-10)
    for i in range(3):
        torch.testing.assert_close(fm(x[i:i + 1], float(s[i]), float(t[i])),
                                   denoiser.flow(x[i:i + 1], float(s[i]), float(t[i])), rtol=EXACT, atol=EXACT)


def test_mixture_flow_map_matches_the_gaussian_oracle_and_is_a_semigroup():
    """One isotropic component is Gaussian data; two components: identity and semigroup to the ODE tolerance."""
    schedule = sa.schedules.linear()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, generator=g, dtype=F64)
    s, t = _times(schedule, 6, g)
    single = mixture_flow_map(schedule, MEAN[None], 0.7)
    torch.testing.assert_close(single(x, s, t), gaussian_flow_map(schedule, MEAN, 0.7)(x, s, t), rtol=ODE, atol=ODE)
    mixture = mixture_flow_map(schedule, torch.tensor([[-2.0, 0.0], [1.5, 1.0]]), 0.05, torch.tensor([0.3, 0.7]))
    u = _times(schedule, 6, g)[0]
    assert float(semigroup_defect(mixture, x, s, t, u).max()) < 10 * ODE
    assert float(identity_defect(mixture, x, s).max()) == 0.0
    # the mixture's map is not the Gaussian map of its mean and variance (the term matters)
    assert float((mixture(x, s, t) - gaussian_flow_map(schedule, 0.0, 1.0)(x, s, t)).abs().max()) > 0.1


# ---------------------------------------------------------------- conversion


@pytest.mark.parametrize("pair", [("linear", "cosine"), ("vp_linear", "linear"), ("cosine", "vp_linear")])
def test_converted_gaussian_map_is_the_destination_map(pair):
    """c(t) X^A_{tau(s),tau(t)}(y / c(s)) = X^B_{s,t}(y), velocities too (directions flip for two pairs)."""
    a, b = (getattr(sa.schedules, name)() for name in pair)
    g = torch.Generator().manual_seed(2)
    y = torch.randn(12, 2, generator=g, dtype=F64)
    s, t = _times(b, 12, g, margin=0.02)
    converted = ConvertedFlowMap(gaussian_flow_map(a, MEAN, VAR), b)
    direct = gaussian_flow_map(b, MEAN, VAR)
    # tau is a Newton-polished inverse (~1e-13 relative) amplified by the map's O(1-10) derivatives
    torch.testing.assert_close(converted(y, s, t), direct(y, s, t), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(converted.velocity(y, t), direct.velocity(y, t), rtol=1e-8, atol=1e-8)


def test_converted_mixture_map_is_the_destination_map():
    a, b = sa.schedules.linear(), sa.schedules.cosine()
    means, weights = torch.tensor([[-2.0, 0.0], [1.5, 1.0]]), torch.tensor([0.3, 0.7])
    g = torch.Generator().manual_seed(3)
    y = torch.randn(4, 2, generator=g, dtype=F64)
    s, t = _times(b, 4, g, margin=0.05)
    converted = ConvertedFlowMap(mixture_flow_map(a, means, 0.05, weights), b)
    torch.testing.assert_close(converted(y, s, t), mixture_flow_map(b, means, 0.05, weights)(y, s, t),
                               rtol=10 * ODE, atol=10 * ODE)


# ---------------------------------------------------------------- the wrapper


def test_flow_map_wrapper_contract_and_errors():
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).double()
    network = lambda x, s, t: net(torch.cat([x, s[:, None], t[:, None]], 1))  # noqa: E731
    fm = FlowMap(network, sa.schedules.linear())
    g = torch.Generator().manual_seed(4)
    x = torch.randn(8, 2, generator=g, dtype=F64)
    s, t = _times(fm.schedule, 8, g)
    assert float(identity_defect(fm, x, s).detach().max()) == 0.0
    torch.testing.assert_close(fm(x, s, t), x + (t - s)[:, None] * network(x, s, t))
    torch.testing.assert_close(fm.velocity(x, t), network(x, t, t))
    with pytest.raises(FlowMapError, match="shape"):
        FlowMap(lambda x, s, t: x[:, :1], fm.schedule)(x, s, t)
    with pytest.raises(FlowMapError, match="one time per sample"):
        fm(x, s[:3], t)
    with pytest.raises(FlowMapError, match="floating-point"):
        fm([1.0, 2.0], 0.1, 0.2)
    with pytest.raises(FlowMapError, match="Schedule"):
        FlowMap(network, "linear")
    with pytest.raises(FlowMapError, match="non-negative"):
        gaussian_flow_map(fm.schedule, 0.0, -1.0)


# ---------------------------------------------------------------- losses

LOSSES = [lagrangian_loss, eulerian_loss, self_distillation_loss]


@pytest.mark.parametrize("schedule", _schedules()[:2], ids=lambda s: s.name)
@pytest.mark.parametrize("loss", LOSSES, ids=lambda f: f.__name__)
def test_distillation_losses_vanish_exactly_at_the_oracle(schedule, loss):
    g = torch.Generator().manual_seed(5)
    fm = gaussian_flow_map(schedule, MEAN, VAR)
    batch, times = _batch(64, g), _times(schedule, 64, g)
    perturbed = Perturbed(fm)
    assert float(loss(fm, batch, times, velocity=fm.velocity)) < 1e-25
    assert float(loss(fm, batch, times)) < 1e-25  # self-distillation: the map's own diagonal
    # perturbed map, true velocity: O(eps^2) = O(2.5e-3 x |sin|^2 x ...) well above rounding
    assert float(loss(perturbed, batch, times, velocity=fm.velocity)) > 1e-5
    assert float(loss(perturbed, batch, times)) > 1e-5  # its own (perturbed) diagonal: still inconsistent
    # the exact map is not the flow map of another velocity
    assert float(loss(fm, batch, times, velocity=perturbed.velocity)) > 1e-5


def test_self_distillation_has_the_value_of_the_eulerian_loss():
    """MeanFlow's regression target sg(v + R): the same value as |R|^2 (t != s almost surely)."""
    g = torch.Generator().manual_seed(9)
    schedule = sa.schedules.linear()
    fm = gaussian_flow_map(schedule, MEAN, VAR)
    batch, times = _batch(64, g), _times(schedule, 64, g)
    perturbed = Perturbed(fm, 0.3)
    torch.testing.assert_close(self_distillation_loss(perturbed, batch, times, velocity=fm.velocity),
                               eulerian_loss(perturbed, batch, times, velocity=fm.velocity), rtol=1e-10, atol=0)


def test_progressive_loss_vanishes_at_the_oracle_gaussian_and_mixture():
    g = torch.Generator().manual_seed(6)
    schedule = sa.schedules.linear()
    fm = gaussian_flow_map(schedule, MEAN, VAR)
    batch, times = _batch(64, g), _times(schedule, 64, g)
    for splits in (1, 2, 3):
        assert float(progressive_loss(fm, batch, times, fm, splits)) < 1e-25
    assert float(progressive_loss(Perturbed(fm), batch, times, fm, 2)) > 1e-5
    # a perturbed teacher composed twice differs from itself in one jump: not a semigroup
    assert float(progressive_loss(Perturbed(fm), batch, times, Perturbed(fm), 2)) > 1e-7
    means, weights = torch.tensor([[-2.0, 0.0], [1.5, 1.0]]), torch.tensor([0.3, 0.7])
    mixture = mixture_flow_map(schedule, means, 0.05, weights)
    small = tuple(b[:6] for b in _batch(6, g)), tuple(tt[:6] for tt in _times(schedule, 6, g))
    assert float(progressive_loss(mixture, *small, mixture, 2)) < (10 * ODE) ** 2
    assert float(progressive_loss(Perturbed(mixture), *small, mixture, 2)) > 1e-5


def test_trajectory_loss_vanishes_on_solved_trajectories_and_only_there():
    """States of ODE solutions (DOP853 on the exact velocity, not the closed form): the Gaussian
    oracle maps x_s onto x_t; a perturbed map, or the pairs' times swapped, do not."""
    g = torch.Generator().manual_seed(10)
    schedule = sa.schedules.linear()
    fm = gaussian_flow_map(schedule, MEAN, 0.7)
    solver = mixture_flow_map(schedule, MEAN[None], 0.7)  # the same law, solved numerically
    x0, noise = _batch(8, g, var=torch.tensor([0.7, 0.7]))
    s, t = _times(schedule, 8, g)
    start = interpolant(fm, x0, noise, s)[0]
    end = solver(start, s, t)
    assert float(trajectory_loss(fm, (start, end), (s, t))) < (10 * ODE) ** 2
    assert float(trajectory_loss(Perturbed(fm), (start, end), (s, t))) > 1e-5
    assert float(trajectory_loss(fm, (start, end), (t, s))) > 1e-5
    with pytest.raises(FlowMapError, match=r"\(x_s, x_t\)"):
        trajectory_loss(fm, (start, end[:4]), (s, t))


def test_diagonal_loss_is_minimised_by_the_exact_velocity():
    """Its minimum is the conditional variance of dI/dt (not 0); the exact velocity attains it."""
    g = torch.Generator().manual_seed(7)
    schedule = sa.schedules.linear()
    fm = gaussian_flow_map(schedule, MEAN, VAR)
    batch, times = _batch(4096, g), _times(schedule, 4096, g)
    exact, perturbed = float(diagonal_loss(fm, batch, times)), float(diagonal_loss(Perturbed(fm, 0.3), batch, times))
    assert 0.1 < exact < perturbed


def test_loss_input_errors():
    fm = gaussian_flow_map(sa.schedules.linear(), MEAN, VAR)
    x0 = torch.zeros(4, 2, dtype=F64)
    with pytest.raises(FlowMapError, match=r"\(x0, noise\)"):
        lagrangian_loss(fm, x0, (0.1, 0.2))
    with pytest.raises(FlowMapError, match="flow map model"):
        eulerian_loss(lambda x, s, t: x, (x0, x0), (0.1, 0.2))
    with pytest.raises(FlowMapError, match="splits"):
        progressive_loss(fm, (x0, x0), (0.1, 0.2), fm, 0)
    with pytest.raises(FlowMapError, match="velocity"):
        lagrangian_loss(fm, (x0, x0), (0.1, 0.2), velocity="teacher")


def test_lagrangian_distillation_trains_a_small_map_towards_the_oracle():
    """A few Adam steps on a tiny map lower the Lagrangian loss against the exact velocity
    (the gradient flows through torch.func.jvp)."""
    torch.manual_seed(0)
    schedule = sa.schedules.linear()
    oracle = gaussian_flow_map(schedule, MEAN, VAR)
    net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2)).double()
    fm = FlowMap(lambda x, s, t: net(torch.cat([x, s[:, None], t[:, None]], 1)), schedule)
    g = torch.Generator().manual_seed(8)
    fixed = _batch(256, g), _times(schedule, 256, g)
    before = float(lagrangian_loss(fm, *fixed, velocity=oracle.velocity).detach())
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(60):
        loss = lagrangian_loss(fm, _batch(128, g), _times(schedule, 128, g), velocity=oracle.velocity)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(lagrangian_loss(fm, *fixed, velocity=oracle.velocity).detach()) < 0.3 * before


# ---------------------------------------------------------------- sampler


def test_sampler_with_the_oracle_is_exact_for_every_step_count_and_schedule():
    """Semigroup: N jumps of the exact map = one jump; on a grid of another schedule too."""
    schedule = sa.schedules.linear()
    oracle = gaussian_flow_map(schedule, MEAN, VAR)
    noise = sa.sampling.per_sample_normal((2000, 2), seed=0, dtype=F64)
    one = FlowMapSampler(oracle, 1)(noise, seed=0)
    for n in (2, 4, 8):
        torch.testing.assert_close(FlowMapSampler(oracle, n)(noise), one, rtol=EXACT, atol=EXACT)
    torch.testing.assert_close(one.mean(0), MEAN.to(F64), rtol=0, atol=0.1)  # 2000 samples: 3 std errors
    torch.testing.assert_close(one.var(0), VAR.to(F64), rtol=0.15, atol=0)
    cosine = sa.schedules.cosine()
    grid = TimeGrid.uniform(cosine, 3, t_start=0.999, t_end=0.001)
    via_cosine = FlowMapSampler(oracle, grid)(noise)
    start = float(grid.sigma[0]) * noise  # state of the cosine schedule at t = 0.999
    conv = sa.convert(schedule, cosine)
    tau0, tau1 = (float(conv.time(torch.tensor(v, dtype=F64))) for v in (0.999, 0.001))
    c0, c1 = (float(conv.scale(torch.tensor(v, dtype=F64))) for v in (0.999, 0.001))
    torch.testing.assert_close(via_cosine, c1 * oracle(start / c0, tau0, tau1), rtol=1e-9, atol=1e-9)
    steps = list(FlowMapSampler(oracle, 4).iterate(noise))
    assert [st.index for st in steps] == [0, 1, 2, 3] and steps[-1].t_next == 1.0


def test_choose_steps_takes_the_fewest_within_tolerance():
    schedule = sa.schedules.linear()
    oracle = gaussian_flow_map(schedule, MEAN, VAR)
    noise = sa.sampling.per_sample_normal((64, 2), seed=1, dtype=F64)
    target = FlowMapSampler(oracle, 1)(noise)
    perturbed = Perturbed(oracle, 0.5, power=2)  # N jumps of error O(1/N^2) each: the error shrinks with N
    score = lambda x: float((x - target).square().mean())  # noqa: E731
    choice = choose_steps(perturbed, noise, score, (1, 2, 4, 8), tolerance=0.0)
    assert choice.steps == min(choice.scores, key=choice.scores.get)
    assert choice.scores[8] < choice.scores[1]
    loose = choose_steps(perturbed, noise, score, (8, 4, 2, 1), tolerance=choice.scores[1])
    assert loose.steps == 1
    with pytest.raises(FlowMapError, match="step counts"):
        choose_steps(oracle, noise, score, (0, 2))
    with pytest.raises(FlowMapError, match="step counts"):
        choose_steps(oracle, noise, score, (1.5, 2))  # not truncated to 1
    with pytest.raises(FlowMapError, match="number of steps"):
        FlowMapSampler(oracle, 0)
    with pytest.raises(FlowMapError, match="noise"):
        FlowMapSampler(oracle, 2)("noise")
