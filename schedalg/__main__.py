"""Command line: ``python -m schedalg`` (or the ``schedalg`` console script).

Subcommands::

    schedalg list                          the library schedules (direction, domain, ends)
    schedalg show vp_linear --param beta_max=10 [--format pretty|latex]
                                           a schedule's derivations (SymPy expressions)
    schedalg show mypkg.schedules:my_schedule     a user's schedule (a Schedule or a factory),
    schedalg show ./my_schedule.py:schedule       from a module or a file (its code is imported)
    schedalg solvers                       the registered solvers (order, stochastic, evaluations)
    schedalg export --schedule linear --solver dpmpp_2m --steps 10 --t-end 0.99 \\
                    --denoiser gaussian:0.5,0.3 --shape 16,2 --out sampler.safetensors
                                           a torch-only sampler file (+ its loader script);
                                           load it with schedalg.sampling.load_sampler or the
                                           loader script's load(path); call it as sampler(noise, seed=0)
    schedalg sample --sampler sampler.safetensors --num-samples 50000 --seed 0 --out samples/
    schedalg sample --schedule linear --solver dpmpp_2m --steps 10 --t-end 0.99 \\
                    --denoiser digits --shape 64 --num-samples 1000 --out digits/
                                           samples ordered by id in shards (any number of
                                           processes: torchrun --nproc_per_node N -m schedalg sample ...)

``--denoiser`` is ``gaussian[:mean,variance]`` (the exact denoiser for Gaussian data) or
``package.module:factory``, a callable returning a :class:`schedalg.models.Denoiser`;
``sample`` also takes ``digits`` (the exact optimal denoiser of scikit-learn's 8x8 digits, shape 64).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
from typing import Any, Sequence

import sympy as sp

__all__ = ["main"]

_GRIDS = ("uniform", "log_snr", "karras")


def _parameters(params: Sequence[str]) -> dict[str, float]:
    from .errors import SchedalgError

    values = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise SchedalgError("--param NAME=VALUE", repr(item), "e.g. --param beta_max=10")
        try:
            values[key] = float(value)
        except ValueError:
            raise SchedalgError(f"a number for --param {key}", repr(value), "e.g. --param beta_max=10") from None
    return values


def _user_object(spec: str, what: str):
    """``package.module:attribute`` or ``path/to/file.py:attribute`` (the user's own code, imported)."""
    import pathlib

    from .errors import SchedalgError

    location, sep, attribute = spec.rpartition(":")
    if not sep or not location or not attribute.isidentifier():
        raise SchedalgError(f"{what} as NAME, package.module:attribute or path/to/file.py:attribute", repr(spec),
                            "e.g. mypkg.schedules:my_schedule or ./my_schedule.py:schedule")
    if location.endswith(".py"):
        path = pathlib.Path(location)
        if not path.is_file():
            raise SchedalgError(f"an existing Python file for {what}", f"{location!r} (no such file)", None)
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(location)
        except ImportError as exc:
            raise SchedalgError(f"an importable module for {what}", repr(location), f"{exc}; check PYTHONPATH") from None
    if not hasattr(module, attribute):
        raise SchedalgError(f"an attribute {attribute!r} in {location!r} for {what}", "none",
                            f"names there: {sorted(n for n in vars(module) if not n.startswith('_'))[:12]}")
    return getattr(module, attribute)


def _schedule(name: str, params: Sequence[str]):
    """A library schedule by name, or a user's: a Schedule or a factory, from a module or file."""
    from .errors import SchedalgError
    from .schedules import LIBRARY
    from .symbolic import Schedule

    values = _parameters(params)
    if ":" in name:
        found = _user_object(name, "the schedule")
        if isinstance(found, Schedule):
            if values:
                raise SchedalgError("no --param for a Schedule object", f"{sorted(values)}",
                                    "point at a factory function to pass parameters")
            return found
        factory, label = found, name
    elif name in LIBRARY:
        factory, label = LIBRARY[name], repr(name)
    else:
        raise SchedalgError(f"a schedule among {sorted(LIBRARY)}, or package.module:attribute / file.py:attribute",
                            repr(name), "run `schedalg list`")
    if not callable(factory):
        raise SchedalgError("a Schedule or a function returning one", f"{type(factory).__name__} at {label}", None)
    try:
        schedule = factory(**values)
    except TypeError as exc:
        raise SchedalgError(f"parameters of {label}", f"{sorted(values)}", str(exc)) from exc
    if not isinstance(schedule, Schedule):
        raise SchedalgError(f"{label} to return a schedalg.Schedule", type(schedule).__name__, None)
    return schedule


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
    inverse = s.inverse_log_snr
    rows.append(("t(lambda)", inverse.expr))
    print(f"schedule {s.name!r}: domain {s.domain}, direction {s.direction:+d} "
          f"(t_noise = {s.t_noise}, t_data = {s.t_data}), point mass: {s.is_point_mass}")
    print(f"log-SNR range (noise -> data): {s.log_snr_range}")
    for label, expr in rows:
        if expr is None:
            print(f"  {label:<13} = (numeric: safeguarded bisection + Newton)")
            continue
        expr = sp.simplify(expr) if args.simplify else expr
        if args.format == "latex":
            print(f"  {label:<13} = {sp.latex(expr)}")
        elif args.format == "pretty":
            art = sp.pretty(expr, use_unicode=True).splitlines()
            print(f"  {label:<13} = " + ("\n" + " " * 18).join(art))
        else:
            print(f"  {label:<13} = {expr}")
    print(f"  inverse: {inverse.kind}, {inverse.method}")
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
        try:
            numbers = [float(v) for v in rest.split(",")] if rest else [0.0, 1.0]
        except ValueError:
            numbers = []
        if len(numbers) != 2:
            raise SchedalgError("--denoiser gaussian:MEAN,VARIANCE (two numbers)", repr(spec), "e.g. gaussian:0.5,0.3")
        return GaussianDenoiser(schedule, numbers[0], numbers[1])
    if ":" not in spec:
        raise SchedalgError("--denoiser gaussian[:mean,var] or package.module:factory", repr(spec), None)
    factory = _user_object(spec, "--denoiser")
    if not callable(factory):
        raise SchedalgError("--denoiser pointing at a callable returning a schedalg Denoiser", type(factory).__name__,
                            None)
    return factory()


def _grid(args: argparse.Namespace, schedule):
    """The time grid of ``--grid``, ``--steps``, ``--t-start``, ``--t-end``."""
    from .sampling import TimeGrid

    if args.grid == "uniform":
        return TimeGrid.uniform(schedule, args.steps, t_start=args.t_start, t_end=args.t_end)
    if args.grid == "log_snr":
        return TimeGrid.log_snr_uniform(schedule, args.steps, t_start=args.t_start, t_end=args.t_end)
    return TimeGrid.karras(schedule, args.steps)


def _add_sampler_arguments(parser: argparse.ArgumentParser, *, schedule_required: bool) -> None:
    """The options that build a sampler from a library schedule, a solver, a grid and a denoiser."""
    parser.add_argument("--schedule", required=schedule_required,
                        help="a library name, package.module:attribute or path/to/file.py:attribute")
    parser.add_argument("--param", action="append", default=[], help="schedule parameter NAME=VALUE")
    parser.add_argument("--solver", default="euler")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--grid", choices=_GRIDS, default="uniform")
    parser.add_argument("--t-start", type=float, default=None)
    parser.add_argument("--t-end", type=float, default=None)
    parser.add_argument("--denoiser", default="gaussian", help="gaussian[:mean,var] or package.module:factory")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64", "float16", "bfloat16"))


def _cmd_export(args: argparse.Namespace) -> int:
    import torch

    from .errors import SchedalgError
    from .sampling import Sampler, export_sampler

    schedule = _schedule(args.schedule, args.param)
    grid = _grid(args, schedule)
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


# ---------------------------------------------------------------------------- sample


def _add_sample_command(commands: Any) -> None:
    sample = commands.add_parser(
        "sample", help="sample N ids into shards (one process, or any number under torchrun)",
        description="Sample ids 0..N-1 into OUT (shards named by id range + manifest.json). Every sample depends "
                    "only on (seed, id): the same files for any number of processes and batch size. Rerun the "
                    "same command to resume after a crash. Under torchrun: NCCL on GPUs, gloo on CPU.")
    sample.add_argument("--sampler", help="an exported sampler file (schedalg export / export_sampler); "
                                          "or give --schedule, --solver, --denoiser, --shape instead")
    _add_sampler_arguments(sample, schedule_required=False)
    sample.add_argument("--shape", help="one sample's shape D1,D2,... (with --schedule)")
    sample.add_argument("--num-samples", type=int, required=True)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--batch-size", type=int, default=64)
    sample.add_argument("--out", required=True, help="output directory")
    sample.add_argument("--device", default=None, help="default: the rank's GPU under NCCL, else cpu")
    sample.add_argument("--no-progress", action="store_true")
    sample.set_defaults(run=_cmd_sample)


def _cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from .distributed import collective_device, init_from_env, sample
    from .errors import SchedalgError
    from .sampling import Sampler, load_sampler

    if (args.sampler is None) == (args.schedule is None):
        raise SchedalgError("exactly one of --sampler FILE or --schedule NAME", f"--sampler={args.sampler!r}, "
                            f"--schedule={args.schedule!r}", "see `schedalg sample --help`")
    with init_from_env() as (rank, world):
        device = torch.device(args.device) if args.device else collective_device()
        if args.sampler is not None:
            sampler, shape, dtype = load_sampler(args.sampler, device=device), None, None
        else:
            try:
                shape = tuple(int(v) for v in (args.shape or "").split(","))
            except ValueError as exc:
                raise SchedalgError("--shape D1,D2,... (one sample, no batch)", repr(args.shape),
                                    "e.g. --shape 2 or --shape 3,32,32") from exc
            schedule = _schedule(args.schedule, args.param)
            if args.denoiser == "digits":
                from .datasets import digits
                from .denoisers import OptimalDenoiser

                denoiser = OptimalDenoiser(schedule, digits())
            else:
                denoiser = _denoiser(args.denoiser, schedule)
            sampler, dtype = Sampler(denoiser, _grid(args, schedule), args.solver), getattr(torch, args.dtype)
        start = time.perf_counter()
        out = sample(sampler, args.num_samples, args.seed, args.out, batch_size=args.batch_size, shape=shape,
                     dtype=dtype, device=device, progress=not args.no_progress)
        if rank == 0:
            elapsed = time.perf_counter() - start
            print(f"ids 0..{args.num_samples - 1} (seed {args.seed}) are in {out} after {elapsed:.2f} s on {world} "
                  "process(es); read them with schedalg.distributed.load_samples")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m schedalg``."""
    parser = argparse.ArgumentParser(prog="schedalg", description="schedalg: schedules, solvers, exported samplers")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the library schedules").set_defaults(run=_cmd_list)
    show = commands.add_parser("show", help="print a schedule's derivations")
    show.add_argument("name", help="a library name, package.module:attribute or path/to/file.py:attribute")
    show.add_argument("--param", action="append", default=[], help="NAME=VALUE (repeatable)")
    show.add_argument("--format", choices=("text", "pretty", "latex"), default="text")
    show.add_argument("--simplify", action="store_true", help="simplify each expression before printing")
    show.set_defaults(run=_cmd_show)
    commands.add_parser("solvers", help="list the solvers").set_defaults(run=_cmd_solvers)
    export = commands.add_parser("export", help="export a torch-only sampler file")
    _add_sampler_arguments(export, schedule_required=True)
    export.add_argument("--shape", default="1,2", help="example state shape B,D1,... (batch first)")
    export.add_argument("--dynamic-batch", action="store_true")
    export.add_argument("--out", required=True, help="the file to write (e.g. sampler.safetensors)")
    export.set_defaults(run=_cmd_export)
    _add_sample_command(commands)
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
