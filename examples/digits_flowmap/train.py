"""Distil the digits flow network into a flow map on CPU (a few minutes, one thread).

    nice -n 10 .venv/bin/python examples/digits_flowmap/train.py --loss trajectory --steps 4000 --batch 256 \
        --lr 1e-3 --trajectories 32768                                              # writes trajectory.pt
    nice -n 10 .venv/bin/python examples/digits_flowmap/train.py --loss progressive \
        --init examples/digits_flowmap/trajectory.pt                                # writes progressive.pt
    nice -n 10 .venv/bin/python examples/digits_flowmap/train.py --loss lagrangian --steps 2500  # lagrangian.pt
    nice -n 10 .venv/bin/python examples/digits_flowmap/train.py --loss eulerian --steps 2500    # eulerian.pt

Teacher: the committed velocity network of ``examples/digits_flow`` (linear schedule
``x_t = t x0 + (1 - t) eps``, noise at ``t = 0``, data at ``t = 1``), frozen. Student: a
flow map ``X_{s,t}(x) = x + (t - s) v_theta(x, s, t)`` (``schedalg.flowmaps.FlowMap`` around
``model.FlowMapMLP``), initialised from the teacher so that it starts as one Euler step.

* ``--loss trajectory``: the teacher's ODE is solved once, offline, from ``--trajectories`` fresh
  noise draws (classical RK4, ``RK4_STEPS`` uniform steps, states kept at ``t = k / KEEP``), and
  ``schedalg.flowmaps.trajectory_loss`` regresses ``X_{s,t}(x_s)`` onto ``x_t``: Lagrangian map
  distillation in integrated form (same minimiser, the flow map of the teacher; no jvp and no
  teacher evaluation in the loop), i.e. progressive flow map matching against the exact flow
  (Boffi, Albergo & Vanden-Eijnden, arXiv 2406.07507). Pairs ``s < t`` on the stored grid: half
  the jumps of the 1-, 2-, 4- and 8-step grids, half any pair. 512 more trajectories are held
  out and the 2-jump endpoint error on them is printed.
* ``--loss lagrangian`` / ``eulerian``: ``schedalg.flowmaps.lagrangian_loss`` / ``eulerian_loss``
  with the teacher's velocity on the interpolant of the training digits, ``s < t`` drawn as half
  sorted uniform pairs and half the jumps of uniform 1-, 2-, 4- and 8-step grids.
* ``--loss progressive`` fine-tunes a trained map (``--init``) with
  ``schedalg.flowmaps.progressive_loss``: each jump is regressed onto two half-jumps of a frozen
  copy of the map, refreshed every ``--refresh`` steps (progressive flow map matching; no teacher
  evaluations, no jvp), plus ``--anchor`` times the Lagrangian loss and ``--trajectory-weight``
  times the trajectory loss if positive; ``--own-states`` starts the jumps where the frozen map's
  own N-jump sampler is instead of on the interpolant.

Adam, cosine learning rate, EMA of the weights (saved). Weights: a plain state dict
(float16) plus a config dict (and the training settings, wall and CPU seconds, load average),
loadable with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]  # the model module, and schedalg from a clone
import schedalg as sa  # noqa: E402
from model import FlowMapMLP, load_flow_map, teacher_module  # noqa: E402
from schedalg.flowmaps import (FlowMap, eulerian_loss, lagrangian_loss, progressive_loss,  # noqa: E402
                               trajectory_loss)

LOSSES = {"lagrangian": lagrangian_loss, "eulerian": eulerian_loss, "progressive": progressive_loss,
          "trajectory": trajectory_loss}
GRID_STEPS = (1, 2, 4, 8)
#: trajectories: RK4 steps on [0, 1] (uniform) and the stored grid (every RK4_STEPS / KEEP steps)
RK4_STEPS, KEEP = 64, 32
TRAJECTORY_SEED = 2024  # not the evaluation (1234) or calibration (4321) noise


@torch.no_grad()
def teacher_trajectories(teacher: torch.nn.Module, count: int, seed: int, chunk: int = 4096) -> torch.Tensor:
    """States ``(KEEP + 1, count, 64)`` of the teacher's ODE at ``t = k / KEEP`` from fresh noise.

    Classical RK4 with ``RK4_STEPS`` uniform steps (measured RMS endpoint distance from DOP853
    at rtol = atol = 1e-8: 0.010, against 0.16-0.34 for the distilled maps)."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(count, 64, generator=generator)
    h, every = 1.0 / RK4_STEPS, RK4_STEPS // KEEP
    out = torch.empty(KEEP + 1, count, 64)
    for lo in range(0, count, chunk):
        x = noise[lo:lo + chunk]
        out[0, lo:lo + chunk] = x
        for k in range(RK4_STEPS):
            t = torch.full((x.shape[0],), k * h)
            k1 = teacher(x, t)
            k2 = teacher(x + h / 2 * k1, t + h / 2)
            k3 = teacher(x + h / 2 * k2, t + h / 2)
            k4 = teacher(x + h * k3, t + h)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            if (k + 1) % every == 0:
                out[(k + 1) // every, lo:lo + chunk] = x
    return out


def draw_grid_pairs(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs ``a < b`` on the stored grid ``k / KEEP``: half jumps of the 1/2/4/8-step grids, half any pair."""
    half = batch // 2
    steps = torch.tensor(GRID_STEPS)[torch.randint(0, len(GRID_STEPS), (half,), generator=generator)]
    k = (torch.rand(half, generator=generator) * steps).floor().long()
    width = KEEP // steps
    first = torch.randint(0, KEEP + 1, (batch - half,), generator=generator)
    second = (first + torch.randint(1, KEEP + 1, (batch - half,), generator=generator)) % (KEEP + 1)
    lo, hi = torch.minimum(first, second), torch.maximum(first, second)
    return torch.cat([k * width, lo]), torch.cat([(k + 1) * width, hi])


def draw_times(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(s, t)`` with ``s < t`` in [0, 1]: half sorted uniform pairs, half uniform-grid jumps."""
    half = batch // 2
    pair = torch.rand(half, 2, generator=generator).sort(dim=1).values
    steps = torch.tensor(GRID_STEPS)[torch.randint(0, len(GRID_STEPS), (batch - half,), generator=generator)]
    k = (torch.rand(batch - half, generator=generator) * steps).floor()
    s = torch.cat([pair[:, 0], k / steps])
    t = torch.cat([pair[:, 1], (k + 1) / steps])
    return s, t


@torch.no_grad()
def own_jumps(frozen: FlowMap, noise: torch.Tensor, steps: int, generator: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Progressive targets on the sampler's own states: ``(x_s, X'_{u,t}(X'_{s,u}(x_s)), s, t)``.

    ``x_s = X'_{(k-1)/N, k/N} o ... o X'_{0, 1/N}(noise)``: where the frozen map's ``N``-jump sampler is
    after ``k`` jumps (``k`` uniform per sample), ``[s, t] = [k/N, (k+1)/N]``, ``u`` its midpoint."""
    batch = noise.shape[0]
    k = torch.randint(0, steps, (batch,), generator=generator)
    state, start = noise, noise.clone()
    for j in range(1, steps):
        state = frozen(state, torch.full((batch,), (j - 1) / steps), torch.full((batch,), j / steps))
        start = torch.where((k == j)[:, None], state, start)
    s, t = k / steps, (k + 1) / steps
    mid = (s + t) / 2
    return start, frozen(frozen(start, s, mid), mid, t), s, t


def train(loss_name: str, steps: int, batch: int, lr: float, ema_decay: float, seed: int, out: Path,
          init: Path | None = None, refresh: int = 250, anchor: float = 0.0, trajectories: int = 8192,
          trajectory_weight: float = 0.0, own: bool = False) -> None:
    torch.set_num_threads(1)
    wall, cpu = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    example = teacher_module()
    teacher = example.load_model()
    data, _ = example.load_digits_split()
    if init is not None:
        network = load_flow_map(init).requires_grad_(True).train()
    else:
        network = FlowMapMLP.from_teacher(teacher)
    ema = copy.deepcopy(network).requires_grad_(False)
    student = FlowMap(network, sa.schedules.linear())
    frozen = FlowMap(copy.deepcopy(network).requires_grad_(False), sa.schedules.linear())
    loss_fn = LOSSES[loss_name]
    if loss_name == "trajectory" or trajectory_weight > 0:
        states = teacher_trajectories(teacher, trajectories + 512, TRAJECTORY_SEED)
        states, check = states[:, :trajectories], states[:, trajectories:]  # the last 512: held out
        print(f"{trajectories} + 512 teacher trajectories in {time.perf_counter() - wall:.1f}s", flush=True)
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    warmup = 100
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: min(1.0, (k + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps)))
    start, running = time.perf_counter(), 0.0
    for step in range(1, steps + 1):
        x0 = data[torch.randint(0, data.shape[0], (batch,), generator=generator)]
        noise = torch.randn(x0.shape, generator=generator)
        if loss_name == "trajectory":
            index = torch.randint(0, trajectories, (batch,), generator=generator)
            a, b = draw_grid_pairs(batch, generator)
            loss = loss_fn(student, (states[a, index], states[b, index]), (a / KEEP, b / KEEP))
            if anchor > 0:
                loss = loss + anchor * lagrangian_loss(student, (x0, noise), draw_times(batch, generator),
                                                       velocity=teacher)
        elif loss_name == "progressive":
            if step % refresh == 1:
                frozen.network.load_state_dict(network.state_dict())
            if own:  # start where the sampler is, not on the interpolant
                origin, target, s, t = own_jumps(frozen, noise, GRID_STEPS[step % len(GRID_STEPS)], generator)
                loss = trajectory_loss(student, (origin, target), (s, t))
            else:
                loss = loss_fn(student, (x0, noise), draw_times(batch, generator), frozen, 2)
            if anchor > 0:  # keep the map on the teacher's ODE while it learns to skip steps
                loss = loss + anchor * lagrangian_loss(student, (x0, noise), draw_times(batch, generator),
                                                       velocity=teacher)
            if trajectory_weight > 0:  # the same, with the pre-solved trajectories
                index = torch.randint(0, trajectories, (batch,), generator=generator)
                a, b = draw_grid_pairs(batch, generator)
                loss = loss + trajectory_weight * trajectory_loss(student, (states[a, index], states[b, index]),
                                                                  (a / KEEP, b / KEEP))
        else:
            loss = loss_fn(student, (x0, noise), draw_times(batch, generator), velocity=teacher)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), network.parameters()):
                p_ema.lerp_(p, 1 - ema_decay)
        running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 100 == 0 or step == steps:
            extra = ""
            if loss_name == "trajectory" or trajectory_weight > 0:
                with torch.no_grad():  # held-out trajectories, 2-step sampling from their noise
                    half = student(check[0], torch.zeros(512), torch.full((512,), 0.5))
                    end = student(half, torch.full((512,), 0.5), torch.ones(512))
                extra = f"  held-out 2-jump rms {float((end - check[-1]).square().mean().sqrt()):.4f}"
            print(f"step {step:5d}  loss(avg) {running:.5f}{extra}  {time.perf_counter() - start:6.1f}s", flush=True)
    seconds = time.perf_counter() - wall
    cpu_seconds = time.process_time() - cpu
    load = os.getloadavg()[0]
    # stored in float16 (half the file; the network runs in float32 or float64 after loading)
    payload = {"config": ema.config, "state_dict": {k: v.half() for k, v in ema.state_dict().items()},
               "training": {"loss": loss_name, "steps": steps, "batch": batch, "lr": lr, "ema_decay": ema_decay,
                            "seed": seed, "teacher": "examples/digits_flow/weights.pt",
                            "init": None if init is None else init.name, "refresh": refresh, "anchor": anchor,
                            "final_loss": running,
                            "trajectories": (trajectories if loss_name == "trajectory" or trajectory_weight > 0
                                             else None),
                            "trajectory_weight": trajectory_weight, "own_states": own,
                            "seconds": seconds, "cpu_seconds": cpu_seconds, "load_average": load}}
    torch.save(payload, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) in {seconds:.0f}s wall, {cpu_seconds:.0f}s CPU, "
          f"load average {load:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", choices=sorted(LOSSES), default="lagrangian")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--ema", type=float, default=0.99)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--init", type=Path, default=None, help="start from these flow-map weights")
    parser.add_argument("--refresh", type=int, default=250, help="progressive: steps between frozen-copy updates")
    parser.add_argument("--anchor", type=float, default=0.0,
                        help="progressive, trajectory: weight of an added Lagrangian distillation loss (0: none)")
    parser.add_argument("--trajectories", type=int, default=8192,
                        help="trajectory: number of pre-solved teacher trajectories")
    parser.add_argument("--trajectory-weight", type=float, default=0.0,
                        help="progressive: weight of an added trajectory loss on pre-solved trajectories (0: none)")
    parser.add_argument("--own-states", action="store_true",
                        help="progressive: start each jump where the frozen map's sampler is (not on the interpolant)")
    args = parser.parse_args()
    if args.loss == "progressive" and args.init is None:
        parser.error("--loss progressive needs --init (a trained flow map to refine)")
    out = args.out or HERE / f"{args.loss}.pt"
    train(args.loss, args.steps, args.batch, args.lr, args.ema, args.seed, out, args.init, args.refresh, args.anchor,
          args.trajectories, args.trajectory_weight, args.own_states)


if __name__ == "__main__":
    main()
