"""Command line: ``python -m schedalg`` (or the ``schedalg`` console script).

Subcommands::

    schedalg list                          the library schedules (direction, domain, ends)
    schedalg show vp_linear --param beta_max=10
                                           a schedule's derivations (SymPy expressions)
    schedalg solvers                       the registered solvers (order, stochastic, evaluations)
    schedalg export --schedule linear --solver dpmpp_2m --steps 10 --t-end 0.99 \\
                    --denoiser gaussian:0.5,0.3 --shape 16,2 --out sampler.safetensors
                                           a torch-only sampler file (+ its loader script);
                                           load it with schedalg.sampling.load_sampler or the
                                           loader script's load(path); call it as sampler(noise, seed=0)

``--denoiser`` is ``gaussian[:mean,variance]`` (the exact denoiser for Gaussian data) or
``package.module:factory``, a callable returning a :class:`schedalg.models.Denoiser`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

import sympy as sp

__all__ = ["main"]

_GRIDS = ("uniform", "log_snr", "karras")


def _schedule(name: str, params: Sequence[str]):
    from .errors import SchedalgError
    from .schedules import LIBRARY

    if name not in LIBRARY:
        raise SchedalgError(f"a schedule among {sorted(LIBRARY)}", repr(name), "run `schedalg list`")
    values = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            raise SchedalgError("--param NAME=VALUE", repr(item), "e.g. --param beta_max=10")
        values[key] = float(value)
    try:
        return LIBRARY[name](**values)
    except TypeError as exc:
        raise SchedalgError(f"parameters of {name!r}", f"{sorted(values)}", str(exc)) from exc


def _cmd_list(args: argparse.Namespace) -> int:
    from .schedules import LIBRARY

    print(f"{'name':<18} {'dir':>3}  {'domain':<14} {'point mass':<10}  alpha ; sigma")
    for name, make in sorted(LIBRARY.items()):
        s = make()
        domain = f"[{s.domain[0]}, {sp.N(s.domain[1], 4)}]"
        print(f"{name:<18} {s.direction:>+3d}  {domain:<14} {str(s.is_point_mass):<10}  {s.alpha} ; {s.sigma}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    s = _schedule(args.name, args.param)
    rows = [("alpha", s.alpha), ("sigma", s.sigma), ("d_alpha", s.d_alpha), ("d_sigma", s.d_sigma),
            ("log_snr", s.log_snr), ("d_log_snr", s.d_log_snr), ("e_star", s.e_star), ("drift_f", s.drift_f),
            ("diffusion_g2", s.diffusion_g2), ("edm_sigma", s.edm_sigma)]
    print(f"schedule {s.name!r}: domain {s.domain}, direction {s.direction:+d} "
          f"(t_noise = {s.t_noise}, t_data = {s.t_data}), point mass: {s.is_point_mass}")
    print(f"log-SNR range (noise -> data): {s.log_snr_range}")
    for label, expr in rows:
        print(f"  {label:<13} = {sp.simplify(expr) if args.simplify else expr}")
    inverse = s.inverse_log_snr
    shown = inverse.expr if inverse.expr is not None else "(numeric: safeguarded bisection + Newton)"
    print(f"  {'t(lambda)':<13} = {shown}   [{inverse.kind}, {inverse.method}, {inverse.seconds:.2f} s]")
    return 0


def _cmd_solvers(args: argparse.Namespace) -> int:
    from .sampling import SOLVERS, TimeGrid
    from .schedules import linear

    grid = TimeGrid.uniform(linear(), 10, t_start=0.05, t_end=0.95)
    print(f"{'name':<16} {'order':>5}  {'stochastic':<10}  evaluations for 10 steps")
    for name, cls in sorted(SOLVERS.items()):
        print(f"{name:<16} {cls.order:>5}  {str(cls.stochastic):<10}  {cls().nfe(grid)}")
    return 0


def _denoiser(spec: str, schedule):
    from .errors import SchedalgError

    if spec == "gaussian" or spec.startswith("gaussian:"):
        from .denoisers import GaussianDenoiser

        _, _, rest = spec.partition(":")
        numbers = [float(v) for v in rest.split(",")] if rest else [0.0, 1.0]
        if len(numbers) != 2:
            raise SchedalgError("--denoiser gaussian:MEAN,VARIANCE", repr(spec), None)
        return GaussianDenoiser(schedule, numbers[0], numbers[1])
    module_name, sep, attribute = spec.partition(":")
    if not sep:
        raise SchedalgError("--denoiser gaussian[:mean,var] or package.module:factory", repr(spec), None)
    factory = getattr(importlib.import_module(module_name), attribute)
    return factory()


def _cmd_export(args: argparse.Namespace) -> int:
    import torch

    from .errors import SchedalgError
    from .sampling import Sampler, TimeGrid, export_sampler

    schedule = _schedule(args.schedule, args.param)
    if args.grid == "uniform":
        grid = TimeGrid.uniform(schedule, args.steps, t_start=args.t_start, t_end=args.t_end)
    elif args.grid == "log_snr":
        grid = TimeGrid.log_snr_uniform(schedule, args.steps, t_start=args.t_start, t_end=args.t_end)
    else:
        grid = TimeGrid.karras(schedule, args.steps)
    try:
        shape = tuple(int(v) for v in args.shape.split(","))
    except ValueError as exc:
        raise SchedalgError("--shape B,D1,...", repr(args.shape), "e.g. --shape 16,2") from exc
    dtype = getattr(torch, args.dtype)
    sampler = Sampler(_denoiser(args.denoiser, schedule), grid, args.solver)
    path = export_sampler(sampler, args.out, torch.zeros(shape, dtype=dtype), dynamic_batch=args.dynamic_batch)
    print(f"wrote {path} ({sampler.solver.name}, {grid.n_steps} steps, {sampler.nfe} network evaluations, "
          f"{sampler.plan.noise_draws} noise draws) and {path.with_name(path.stem + '_loader.py')}; "
          f"use: load(path)(noise, seed=0)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m schedalg``."""
    parser = argparse.ArgumentParser(prog="schedalg", description="schedalg: schedules, solvers, exported samplers")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the library schedules").set_defaults(run=_cmd_list)
    show = commands.add_parser("show", help="print a schedule's derivations")
    show.add_argument("name")
    show.add_argument("--param", action="append", default=[], help="NAME=VALUE (repeatable)")
    show.add_argument("--simplify", action="store_true", help="simplify each expression before printing")
    show.set_defaults(run=_cmd_show)
    commands.add_parser("solvers", help="list the solvers").set_defaults(run=_cmd_solvers)
    export = commands.add_parser("export", help="export a torch-only sampler file")
    export.add_argument("--schedule", required=True)
    export.add_argument("--param", action="append", default=[], help="schedule parameter NAME=VALUE")
    export.add_argument("--solver", default="euler")
    export.add_argument("--steps", type=int, default=10)
    export.add_argument("--grid", choices=_GRIDS, default="uniform")
    export.add_argument("--t-start", type=float, default=None)
    export.add_argument("--t-end", type=float, default=None)
    export.add_argument("--denoiser", default="gaussian", help="gaussian[:mean,var] or package.module:factory")
    export.add_argument("--shape", default="1,2", help="example state shape B,D1,... (batch first)")
    export.add_argument("--dtype", default="float32", choices=("float32", "float64", "float16", "bfloat16"))
    export.add_argument("--dynamic-batch", action="store_true")
    export.add_argument("--out", required=True, help="the file to write (e.g. sampler.safetensors)")
    export.set_defaults(run=_cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input, with the error on stderr)."""
    from .errors import SchedalgError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SchedalgError as exc:
        print(f"schedalg: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
