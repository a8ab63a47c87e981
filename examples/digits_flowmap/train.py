"""Distil the digits flow network into a flow map on CPU (a few minutes, one thread).

    nice -n 10 .venv/bin/python examples/digits_flowmap/train.py --loss lagrangian   # writes lagrangian.pt
    nice -n 10 .venv/bin/python examples/digits_flowmap/train.py --loss eulerian     # writes eulerian.pt
    nice -n 10 .venv/bin/python examples/digits_flowmap/train.py --loss progressive \
        --init examples/digits_flowmap/lagrangian.pt                                 # writes progressive.pt

Teacher: the committed velocity network of ``examples/digits_flow`` (linear schedule
``x_t = t x0 + (1 - t) eps``, noise at ``t = 0``, data at ``t = 1``), frozen. Student: a
flow map ``X_{s,t}(x) = x + (t - s) v_theta(x, s, t)`` (``schedalg.flowmaps.FlowMap`` around
``model.FlowMapMLP``), initialised from the teacher so that it starts as one Euler step.
Loss: ``schedalg.flowmaps.lagrangian_loss`` or ``eulerian_loss`` with the teacher's velocity
(Boffi, Albergo & Vanden-Eijnden, arXiv 2406.07507, Lagrangian / Eulerian map
distillation), on the training digits, ``s < t`` drawn as half sorted uniform pairs and
half the jumps of uniform 1-, 2-, 4- and 8-step grids (the jumps the sampler makes).
``--loss progressive`` fine-tunes a trained map (``--init``) with
``schedalg.flowmaps.progressive_loss``: each jump is regressed onto two half-jumps of a
frozen copy of the map, refreshed every ``--refresh`` steps (progressive flow map
matching; no teacher evaluations, no jvp), plus ``--anchor`` times the Lagrangian loss if
``--anchor > 0``.
Adam, cosine learning rate, EMA of the weights (saved). Weights: a plain state dict
(float16) plus a config dict, loadable with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]  # the model module, and schedalg from a clone
import schedalg as sa  # noqa: E402
from model import FlowMapMLP, load_flow_map, teacher_module  # noqa: E402
from schedalg.flowmaps import FlowMap, eulerian_loss, lagrangian_loss, progressive_loss  # noqa: E402

LOSSES = {"lagrangian": lagrangian_loss, "eulerian": eulerian_loss, "progressive": progressive_loss}
GRID_STEPS = (1, 2, 4, 8)


def draw_times(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(s, t)`` with ``s < t`` in [0, 1]: half sorted uniform pairs, half uniform-grid jumps."""
    half = batch // 2
    pair = torch.rand(half, 2, generator=generator).sort(dim=1).values
    steps = torch.tensor(GRID_STEPS)[torch.randint(0, len(GRID_STEPS), (batch - half,), generator=generator)]
    k = (torch.rand(batch - half, generator=generator) * steps).floor()
    s = torch.cat([pair[:, 0], k / steps])
    t = torch.cat([pair[:, 1], (k + 1) / steps])
    return s, t


def train(loss_name: str, steps: int, batch: int, lr: float, ema_decay: float, seed: int, out: Path,
          init: Path | None = None, refresh: int = 250, anchor: float = 0.0) -> None:
    torch.set_num_threads(1)
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
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    warmup = 100
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: min(1.0, (k + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps)))
    start, running = time.perf_counter(), 0.0
    for step in range(1, steps + 1):
        x0 = data[torch.randint(0, data.shape[0], (batch,), generator=generator)]
        noise = torch.randn(x0.shape, generator=generator)
        if loss_name == "progressive":
            if step % refresh == 1:
                frozen.network.load_state_dict(network.state_dict())
            loss = loss_fn(student, (x0, noise), draw_times(batch, generator), frozen, 2)
            if anchor > 0:  # keep the map on the teacher's ODE while it learns to skip steps
                loss = loss + anchor * lagrangian_loss(student, (x0, noise), draw_times(batch, generator),
                                                       velocity=teacher)
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
            print(f"step {step:5d}  loss(avg) {running:.5f}  {time.perf_counter() - start:6.1f}s", flush=True)
    seconds = time.perf_counter() - start
    # stored in float16 (half the file; the network runs in float32 or float64 after loading)
    payload = {"config": ema.config, "state_dict": {k: v.half() for k, v in ema.state_dict().items()},
               "training": {"loss": loss_name, "steps": steps, "batch": batch, "lr": lr, "ema_decay": ema_decay,
                            "seed": seed, "teacher": "examples/digits_flow/weights.pt",
                            "init": None if init is None else init.name, "refresh": refresh, "anchor": anchor, "final_loss": running,
                            "seconds": seconds}}
    torch.save(payload, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) in {seconds:.0f}s")


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
                        help="progressive: weight of an added Lagrangian distillation loss (0: none)")
    args = parser.parse_args()
    if args.loss == "progressive" and args.init is None:
        parser.error("--loss progressive needs --init (a trained flow map to refine)")
    out = args.out or HERE / f"{args.loss}.pt"
    train(args.loss, args.steps, args.batch, args.lr, args.ema, args.seed, out, args.init, args.refresh, args.anchor)


if __name__ == "__main__":
    main()
