"""Train the digits flow-matching model on CPU (about 3-5 minutes, one thread).

    .venv/bin/python examples/digits_flow/train.py            # writes examples/digits_flow/weights.pt

Flow matching on the linear path ``x_t = t x0 + (1 - t) eps`` (``sa.schedules.linear()``,
data at ``t = 1``): ``t ~ U(0, 1)``, loss ``|v_theta(x_t, t) - (x0 - eps)|^2``, i.e. the
network predicts the velocity ``d x_t / dt`` (Lipman et al. 2023). Adam with a cosine
learning rate, an exponential moving average of the weights (saved), fixed seeds.
The weights are a plain state dict plus a config dict, loadable with
``torch.load(..., weights_only=True)`` (see ``model.load_model``).
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
from model import WEIGHTS, VelocityMLP, load_digits_split  # noqa: E402


def train(steps: int, batch: int, lr: float, ema_decay: float, seed: int, out: Path) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    data, _ = load_digits_split()
    model = VelocityMLP()
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    warmup = 200
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: min(1.0, (k + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps)))
    start, running = time.perf_counter(), 0.0
    for step in range(1, steps + 1):
        x0 = data[torch.randint(0, data.shape[0], (batch,))]
        eps = torch.randn_like(x0)
        t = torch.rand(batch)
        xt = t[:, None] * x0 + (1 - t[:, None]) * eps
        loss = (model(xt, t) - (x0 - eps)).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), model.parameters()):
                p_ema.lerp_(p, 1 - ema_decay)
        running = 0.99 * running + 0.01 * loss.item() if step > 1 else loss.item()
        if step % 1000 == 0 or step == steps:
            print(f"step {step:6d}  loss(avg) {running:.4f}  {time.perf_counter() - start:6.1f}s", flush=True)
    payload = {"config": ema.config, "state_dict": ema.state_dict(),
               "training": {"steps": steps, "batch": batch, "lr": lr, "ema_decay": ema_decay, "seed": seed,
                            "schedule": "linear", "prediction": "velocity", "final_loss": running,
                            "seconds": time.perf_counter() - start}}
    torch.save(payload, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) in {time.perf_counter() - start:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    train(args.steps, args.batch, args.lr, args.ema, args.seed, args.out)


if __name__ == "__main__":
    main()
