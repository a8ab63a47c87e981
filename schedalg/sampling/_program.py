"""Solvers as programs: a solver writes, before the loop, what every step does; one interpreter runs it.

A step of every solver in this package (and of the lazy and augmented samplers) is a short
sequence of two kinds of instruction on *registers* (tensors of the state's shape):

* **evaluate** the denoiser at a register ``X`` and index ``k`` of the evaluation grid:
  ``(x0_hat, eps_hat) = D(X, k)`` into two new registers;
* **combine** registers linearly into a new one, ``R = sum_j w_j R_j``, where each weight is
  a Python float (computed in float64 before the loop), a tensor that broadcasts against
  the state (per-channel weights of the lazy samplers), or a :class:`Blocks` matrix acting
  on the block axis of an augmented state (``(W (x) I) z``).

Register 0 holds the initial state; the standard-normal draws ``(K, B, ...)`` of stochastic
solvers are registers too. A :class:`ProgramBuilder` writes the instructions one step at a
time (``solver.plan(grid)`` returns the finished :class:`Program`); registers are written
once (SSA), and the builder works out after which instruction each register is read for the
last time, so that the interpreter drops it there: the loop keeps alive only the state, the
predictions still to be combined and the solver's memory (e.g. DPM-Solver++'s last
prediction), never a copy per weight.

**Fusion** is a transformation of the program, not a second loop. When the prepared
denoiser's output is affine in a raw network output ``F`` (``x0_hat = a_x X + a_p F``,
``eps_hat = e_x X + e_p F``, :meth:`schedalg.models.PreparedNetwork.affine_output`),
:meth:`Program.fuse` replaces each evaluation by a raw call and substitutes these maps into
every combination that reads the predictions (weights multiplied and merged in float64 on the
host; a weight that is exactly 0 is left out, so an undefined coefficient never enters).
The interpreter then runs the transformed program; Euler on a velocity network becomes
``x <- x + B_i F`` as in a hand-written loop, and every other solver gains the same.

The interpreter does no SymPy work and reads nothing back to the host; in-library samplers,
the ``nn.Module`` traced by :func:`schedalg.sampling.export_sampler` and ``torch.compile``
all run :meth:`Program.run_step`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Mapping, Sequence

import torch

from ._errors import SolverError

__all__ = ["Blocks", "Program", "ProgramBuilder", "Weight"]

_EVAL, _RAW, _LIN = 0, 1, 2
_ADD = 3  # only in Program._steps: a combination regs[a] + w regs[b]


def _lin(out: int, terms: tuple) -> tuple:
    """A combination instruction ``(LIN, out, terms, add, free)``; ``add = (a, w, b)`` when it is
    ``regs[a] + w regs[b]`` with float weights (one ``torch.add``), else None. A term of float weight 1
    goes first: the combination then starts with one ``torch.add`` instead of a scaling."""
    for j, (w, _) in enumerate(terms):
        if type(w) is float and w == 1.0:
            terms = (terms[j],) + terms[:j] + terms[j + 1:]
            break
    add = None
    if len(terms) == 2 and type(terms[0][0]) is float and terms[0][0] == 1.0 and type(terms[1][0]) is float:
        add = (terms[0][1], terms[1][0], terms[1][1])
    return (_LIN, out, terms, add, ())


class Blocks:
    """A ``(k, k)`` matrix acting on axis 1 of states ``(B, k, ...)``: ``(W (x) I) z`` without building it."""

    __slots__ = ("matrix",)

    def __init__(self, matrix: torch.Tensor):
        self.matrix = matrix

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,bj...->bi...", self.matrix, z)

    def __mul__(self, other: Any) -> "Blocks":
        if isinstance(other, Blocks):
            return Blocks(self.matrix @ other.matrix)
        return Blocks(self.matrix * other)

    __rmul__ = __mul__

    def __add__(self, other: "Blocks") -> "Blocks":
        return Blocks(self.matrix + other.matrix)

    def to(self, **kwargs: Any) -> "Blocks":
        return Blocks(self.matrix.to(**kwargs))


#: A weight of a combination: a float, a tensor broadcasting against the state, or :class:`Blocks`.
Weight = Any


def _is_zero(weight: Weight) -> bool:
    return type(weight) is float and weight == 0.0


def _product(a: Weight, b: Weight) -> Weight:
    """``a b`` for floats, tensors and :class:`Blocks` (a Blocks factor keeps the product a Blocks)."""
    if type(a) is float and type(b) is float:
        return a * b
    if isinstance(b, Blocks):
        return b * a
    return a * b


def _sum(a: Weight, b: Weight) -> Weight:
    return a + b


@dataclass(frozen=True, eq=False)
class Program:
    """What a run does, step by step, with every weight computed (see the module docstring).

    Attributes
    ----------
    code:
        Per step, the instructions ``(EVAL, X, k, x0, eps, free)``, ``(RAW, X, k, F, free)`` or
        ``(LIN, out, terms, add, free)``; ``free`` lists the registers read for the last time there.
    ends:
        Per step ``(x_i, x_{i+1}, x0_terms, free)``: registers of the state before and after the
        step, ``x0_hat`` of the step's first evaluation as ``((weight, register), ...)`` and the
        registers dropped after the step has been observed.
    registers, noise_base:
        Number of registers; register ``noise_base + j`` holds draw ``j``.
    nfe, noise_draws:
        Exact network evaluations and standard-normal draws (of the state's shape) of a run.
    eval_times:
        float64 times (or free-coordinate values) on which the denoiser is prepared.
    eval_grid, grid:
        The :class:`~schedalg.sampling.TimeGrid` objects of a schedule sampler (None elsewhere).
    coefficients:
        Named per-step weights the solver computed (float64 tensors), kept for inspection and proofs.
    """

    code: tuple
    ends: tuple
    registers: int
    noise_base: int
    nfe: int
    noise_draws: int
    eval_times: torch.Tensor
    eval_grid: Any = None
    grid: Any = None
    solver: Any = None
    coefficients: Mapping[str, torch.Tensor] = field(default_factory=dict)
    fused: bool = False

    @property
    def n_steps(self) -> int:
        return len(self.code)

    @cached_property
    def evaluations(self) -> tuple[int, ...]:
        """Network evaluations of each step."""
        return tuple(sum(op[0] != _LIN for op in block) for block in self.code)

    @cached_property
    def propagated(self) -> frozenset[int]:
        """Evaluation indices whose raw network outputs all reach the final state through combinations.

        A combination multiplies by nonzero floats or tensor weights and adds, so a NaN or inf in a term
        leaves a NaN or inf in its result (``w inf`` is infinite, ``inf - inf`` is NaN, ``0 NaN`` is NaN);
        along a chain of combinations from a raw output ``F`` to the final state, a non-finite ``F`` thus
        makes the final state non-finite. A finite final state therefore shows these outputs finite
        (the deferred finite check then reads only the others). Terms with :class:`Blocks` weights (a
        matrix product) and evaluations of the unfused program (the prediction is formed inside the
        denoiser) are not counted, nor are raw outputs read only through a network call.
        """
        reach = {self.ends[-1][1]}
        for block in reversed(self.code):
            for op in reversed(block):
                if op[0] == _LIN and op[1] in reach:
                    reach.update(r for w, r in op[2] if type(w) is not Blocks)
        ops = [op for block in self.code for op in block if op[0] != _LIN]
        unreached = {op[2] for op in ops if op[0] == _EVAL or op[3] not in reach}
        return frozenset(op[2] for op in ops if op[2] not in unreached)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.coefficients[name]

    # ------------------------------------------------------------------ the interpreter

    def start(self, x: torch.Tensor, draws: torch.Tensor | None) -> list:
        """The registers at the start of a run: the state and the draws (views, no copies)."""
        regs: list = [None] * self.registers
        regs[0] = x
        if self.noise_draws:
            regs[self.noise_base:self.noise_base + self.noise_draws] = draws.unbind(0)
        return regs

    @cached_property
    def _steps(self) -> tuple:
        """The instructions of each step as uniform 5-tuples ``(kind, out, source, argument, free)`` for
        :meth:`run_step` (one unpacking and one comparison per instruction): ``_ADD``
        ``regs[out] = regs[source] + w regs[b]`` with ``argument = (w, b)``; ``_RAW`` with
        ``argument = k``; ``_EVAL`` with ``argument = (k, eps register)``; ``_LIN`` with the terms."""
        steps = []
        for block in self.code:
            ops = []
            for op in block:
                if op[0] == _LIN:
                    add = op[3]
                    ops.append((_ADD, op[1], add[0], (add[1], add[2]), op[4]) if add is not None
                               else (_LIN, op[1], None, op[2], op[4]))
                elif op[0] == _RAW:
                    ops.append((_RAW, op[3], op[1], op[2], op[4]))
                else:
                    ops.append((_EVAL, op[3], op[1], (op[2], op[4]), op[5]))
            steps.append(tuple(ops))
        return tuple(steps)

    def run_step(self, i: int, regs: list, denoiser: Any, cond: Mapping[str, Any]) -> None:
        """Execute step ``i`` on ``regs`` (``denoiser(X, k, **cond)``, or ``denoiser.raw`` when fused)."""
        for kind, out, source, argument, free in self._steps[i]:
            if kind == _ADD:
                regs[out] = torch.add(regs[source], regs[argument[1]], alpha=argument[0])
            elif kind == _RAW:
                regs[out] = denoiser.raw(regs[source], argument, **cond) if cond else \
                    denoiser.raw(regs[source], argument)
            elif kind == _LIN:
                regs[out] = _combine(argument, regs)
            else:
                regs[out], regs[argument[1]] = denoiser(regs[source], argument[0], **cond)
            if free:
                for r in free:
                    regs[r] = None

    def end_step(self, i: int, regs: list) -> None:
        """Drop what only the observation of step ``i`` kept alive."""
        for r in self.ends[i][3]:
            regs[r] = None

    def evaluation_indices(self, i: int) -> tuple[int, ...]:
        """Indices into the evaluation grid of step ``i``'s evaluations, in order."""
        return tuple(op[2] for op in self.code[i] if op[0] != _LIN)

    def memory(self, i: int) -> tuple[int, ...]:
        """The solver's memory at step ``i``: registers it reads that earlier steps wrote, other than the
        state and the draws, the most recently written first (e.g. DPM-Solver++'s ``m_{i-1}, m_{i-2}``)."""
        written = {}
        for j, block in enumerate(self.code[:i]):
            for n, op in enumerate(block):
                for r in _writes(op):
                    written[r] = (j, n)
        reads = {r for op in self.code[i] for r in _reads(op)} | {r for _, r in self.ends[i][2]}
        kept = [r for r in reads if r in written and r != self.ends[i][0]]
        return tuple(sorted(kept, key=lambda r: written[r], reverse=True))

    def step_from(self, i: int, x: torch.Tensor, memory: Sequence[torch.Tensor], denoiser: Any,
                  draws: torch.Tensor | None = None, cond: Mapping[str, Any] | None = None) -> torch.Tensor:
        """Step ``i`` alone, from the state ``x`` and the values of :meth:`memory` (tests, proofs)."""
        regs = self.start(x, draws)
        regs[self.ends[i][0]] = x
        for r, value in zip(self.memory(i), memory, strict=True):
            regs[r] = value
        self.run_step(i, regs, denoiser, cond or {})
        return regs[self.ends[i][1]]

    def trace(self, x: Any, denoiser: Any, draws: Sequence[Any] = ()) -> Any:
        """The final state with plain arithmetic (``+``, ``*``) on any values, e.g. SymPy expressions.

        ``denoiser(X, k)`` (or ``denoiser.raw(X, k)`` in a fused program) returns the values of the
        predictions; :class:`Blocks` weights act as their matrices. The proofs run the solvers'
        programs this way.
        """
        regs: list = [None] * self.registers
        regs[0] = x
        regs[self.noise_base:self.noise_base + len(draws)] = list(draws)
        for block in self.code:
            for op in block:
                if op[0] == _LIN:
                    regs[op[1]] = sum(_exact(w) * regs[r] for w, r in op[2])
                elif op[0] == _RAW:
                    regs[op[3]] = denoiser.raw(regs[op[1]], op[2])
                else:
                    regs[op[3]], regs[op[4]] = denoiser(regs[op[1]], op[2])
        return regs[self.ends[-1][1]]

    def run(self, x: torch.Tensor, draws: torch.Tensor | None, denoiser: Any,
            cond: Mapping[str, Any] | None = None) -> torch.Tensor:
        """The final state from ``x`` (never modified in place)."""
        cond = cond or {}
        regs = self.start(x, draws)
        for i in range(len(self.code)):
            self.run_step(i, regs, denoiser, cond)
            self.end_step(i, regs)
        return regs[self.ends[-1][1]]

    # ------------------------------------------------------------------ transformations

    def fuse(self, prepared: Any) -> "Program":
        """This program with every evaluation whose output map is affine replaced by a raw call.

        ``prepared.affine_output(k)`` gives ``(a_x, a_p, e_x, e_p)`` (or None: left as it is).
        Returns ``self`` when nothing can be fused or a fused weight would not be finite.
        """
        affine = getattr(prepared, "affine_output", None)
        if self.fused or not (callable(affine) and callable(getattr(prepared, "raw", None))):
            return self
        # predictions read as a whole (evaluated at, or a step's state) or in a later step (the solver's
        # memory) are formed after the raw call; other reads are substituted
        whole = {op[1] for block in self.code for op in block if op[0] != _LIN}
        whole |= {r for ends in self.ends for r in ends[:2]}
        step_of = {r: i for i, block in enumerate(self.code) for op in block for r in _writes(op)}
        whole |= {r for i, block in enumerate(self.code) for op in block for r in _reads(op) if step_of.get(r, i) < i}
        subst: dict[int, tuple] = {}
        code, registers = [], self.registers
        for block in self.code:
            for target in [r for r in subst if r in whole]:  # formed in an earlier step: read as it is
                del subst[target]
            out = []
            for op in block:
                if op[0] == _EVAL and affine(op[2]) is not None:
                    a_x, a_p, e_x, e_p = affine(op[2])
                    raw, registers = registers, registers + 1
                    out.append((_RAW, op[1], op[2], raw, ()))
                    for target, (w_x, w_p) in ((op[3], (a_x, a_p)), (op[4], (e_x, e_p))):
                        subst[target] = ((w_x, op[1]), (w_p, raw))
                        if target in whole:  # formed here; later reads use it, so F can be dropped sooner
                            formed = _substitute(((1.0, target),), subst)
                            if formed is None:
                                return self
                            out.append(_lin(target, formed))
                            del subst[target]
                elif op[0] == _LIN:
                    terms = _substitute(op[2], subst)
                    if terms is None:
                        return self
                    out.append(_lin(op[1], terms))
                else:
                    out.append(op)
            code.append(tuple(out))
        if registers == self.registers:
            return self
        ends = []  # each step's observed x0_hat: substituted, or the register where it was formed
        for x_i, x_next, x0_terms, _ in self.ends:
            terms = _substitute(x0_terms, subst)
            if terms is None:
                return self
            ends.append((x_i, x_next, terms, ()))
        return _with_liveness(replace(self, code=tuple(code), ends=tuple(ends), registers=registers, fused=True))

    def on(self, like: torch.Tensor) -> "Program":
        """The program with tensor and :class:`Blocks` weights on ``like``'s device and dtype (floats unchanged)."""
        def cast(weight: Weight) -> Weight:
            if type(weight) is float:
                return weight
            return weight.to(device=like.device, dtype=like.dtype)

        code = tuple(tuple(_lin(op[1], tuple((cast(w), r) for w, r in op[2]))[:-1] + op[-1:] if op[0] == _LIN
                           else op for op in block) for block in self.code)
        ends = tuple((a, b, tuple((cast(w), r) for w, r in terms), free) for a, b, terms, free in self.ends)
        return replace(self, code=code, ends=ends)


def _exact(weight: Weight) -> Any:
    """A weight for :meth:`Program.trace`: integral floats as ints (1.0 stays exact in SymPy), Blocks as matrices."""
    if type(weight) is float and weight.is_integer():
        return int(weight)
    return weight.matrix if type(weight) is Blocks else weight


def _substitute(terms: tuple, subst: Mapping[int, tuple]) -> tuple | None:
    """Terms with substituted registers expanded, weights merged per register (None: not finite)."""
    parts: dict[int, list[float]] = {}
    for w, r in terms:
        for coefficient, target in subst.get(r, ((1.0, r),)):
            if coefficient != 0.0:
                parts.setdefault(target, []).append(w * coefficient)
    if not all(math.isfinite(v) for values in parts.values() for v in values):
        return None
    merged = {r: math.fsum(values) for r, values in parts.items()}  # correctly rounded: 1 + h - h is 1
    kept = tuple((w, r) for r, w in merged.items() if w != 0.0)
    return kept or ((0.0, terms[0][1]),)


def _scaled(weight: Weight, tensor: torch.Tensor) -> torch.Tensor:
    if type(weight) is float:
        return tensor * weight
    if type(weight) is Blocks:
        return weight(tensor)
    return tensor * weight


def _combine(terms: tuple, regs: list) -> torch.Tensor:
    """``sum_j w_j regs[r_j]`` in the first term's dtype; a fresh tensor unless it is one register unscaled."""
    w0, r0 = terms[0]
    if len(terms) == 1:
        return regs[r0] if (type(w0) is float and w0 == 1.0) else _scaled(w0, regs[r0])
    w1, r1 = terms[1]
    if type(w0) is float and w0 == 1.0 and type(w1) is float:
        out = torch.add(regs[r0], regs[r1], alpha=w1)
    else:
        out = _scaled(w0, regs[r0])
        _accumulate(out, w1, regs[r1])
    for w, r in terms[2:]:
        _accumulate(out, w, regs[r])
    return out


def _accumulate(out: torch.Tensor, weight: Weight, tensor: torch.Tensor) -> None:
    """``out += weight tensor`` in place (``out`` is always a tensor this combination made)."""
    if type(weight) is float:
        out.add_(tensor, alpha=weight)
    elif type(weight) is Blocks:
        out.add_(weight(tensor))
    else:
        out.addcmul_(weight, tensor)


def _with_liveness(program: Program) -> Program:
    """Attach to every instruction the registers read there for the last time."""
    last: dict[int, tuple] = {}
    written: dict[int, tuple] = {}
    for i, block in enumerate(program.code):
        for j, op in enumerate(block):
            for r in _reads(op):
                last[r] = (i, j)
            for r in _writes(op):
                written[r] = (i, j)
        x_i, x_next, terms, _ = program.ends[i]
        for r in (x_i, x_next) + tuple(r for _, r in terms):
            last[r] = (i, len(block))  # kept until the step has been observed
    final = program.ends[-1][1]
    last.pop(final, None)
    for r, place in written.items():  # written and never read: dropped at once
        last.setdefault(r, place)
    drop: dict[tuple, list[int]] = {}
    for r, place in last.items():
        if r != final:
            drop.setdefault(place, []).append(r)
    code = tuple(tuple(op[:-1] + (tuple(sorted(drop.get((i, j), ()))),) for j, op in enumerate(block))
                 for i, block in enumerate(program.code))
    ends = tuple((a, b, terms, tuple(sorted(drop.get((i, len(program.code[i])), ()))))
                 for i, (a, b, terms, _) in enumerate(program.ends))
    return replace(program, code=code, ends=ends)


def _reads(op: tuple) -> tuple[int, ...]:
    if op[0] == _LIN:
        return tuple(r for _, r in op[2])
    return (op[1],)


def _writes(op: tuple) -> tuple[int, ...]:
    if op[0] == _LIN:
        return (op[1],)
    if op[0] == _RAW:
        return (op[3],)
    return (op[3], op[4])


class ProgramBuilder:
    """Writes a :class:`Program` one step at a time.

    ::

        b = ProgramBuilder(grid.n_steps, grid.times, noise_draws=0)
        x = b.state                               # register 0
        for i in range(grid.n_steps):
            x0, eps = b.evaluate(x, i)            # D at eval-grid index i
            x_next = b.combine((1.0, x), (h[i] * da[i], x0), (h[i] * ds[i], eps))
            b.end_step(x_next, x0)
            x = x_next
        program = b.build(eval_grid=grid, grid=grid)

    Terms whose weight is the float 0.0 are left out (so an undefined coefficient multiplied
    by an exact zero never reaches a tensor); a single term of weight 1.0 is the register itself.
    """

    def __init__(self, n_steps: int, eval_times: torch.Tensor, *, noise_draws: int = 0):
        self.n_steps = n_steps
        self.eval_times = eval_times
        self.noise_draws = noise_draws
        self.state = 0
        self._next = 1 + noise_draws
        self._code: list[tuple] = []
        self._block: list[tuple] = []
        self._ends: list[tuple] = []
        self._start = 0
        self._nfe = 0
        #: named per-step weights, kept in :attr:`Program.coefficients` (inspection, proofs)
        self.coefficients: dict[str, Any] = {}
        #: ``(step, weight)`` of the first non-finite float weight written (reported by the caller)
        self.bad: tuple[int, float] | None = None

    def _register(self) -> int:
        self._next += 1
        return self._next - 1

    def evaluate(self, state: int, k: int) -> tuple[int, int]:
        """Registers of ``(x0_hat, eps_hat)`` of the denoiser at register ``state``, eval-grid index ``k``."""
        x0, eps = self._register(), self._register()
        self._block.append((_EVAL, state, int(k), x0, eps, ()))
        self._nfe += 1
        return x0, eps

    def noise(self, j: int) -> int:
        """The register of standard-normal draw ``j``."""
        if not 0 <= j < self.noise_draws:
            raise SolverError(f"a draw index in [0, {self.noise_draws})", repr(j), "declare noise_draws=")
        return 1 + j

    def combine(self, *terms: tuple[Weight, int]) -> int:
        """The register of ``sum w_j R_j`` (exact-zero float weights left out)."""
        kept = tuple((float(w) if isinstance(w, (int, float)) else w, r) for w, r in terms if not _is_zero(
            float(w) if isinstance(w, (int, float)) else w))
        if not kept:
            kept = ((0.0, terms[0][1]),)
        if self.bad is None:
            for w, _ in kept:
                if type(w) is float and not math.isfinite(w):
                    self.bad = (len(self._code), w)
        if len(kept) == 1 and type(kept[0][0]) is float and kept[0][0] == 1.0:
            return kept[0][1]
        out = self._register()
        self._block.append(_lin(out, kept))
        return out

    def record(self, **weights: Any) -> None:
        """Keep per-step weights under a name (float64 tensors) in the program, for inspection."""
        for name, values in weights.items():
            try:
                self.coefficients[name] = torch.as_tensor(values, dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError):  # symbolic weights (proofs): kept as they are
                self.coefficients[name] = tuple(values)

    def end_step(self, state: int, x0: int) -> None:
        """Close the step: ``state`` is ``x_{i+1}``, ``x0`` the prediction exposed to observers."""
        self._code.append(tuple(self._block))
        self._ends.append((self._start, state, ((1.0, x0),), ()))
        self._block = []
        self._start = state

    def build(self, *, eval_grid: Any = None, grid: Any = None, solver: Any = None) -> Program:
        if len(self._code) != self.n_steps:
            raise SolverError(f"{self.n_steps} steps written", f"{len(self._code)}", "call end_step once per step")
        if self.bad is not None:
            raise SolverError("finite solver weights on every step", f"a weight {self.bad[1]} at step {self.bad[0]}",
                              "start or end the grid strictly inside the domain")
        program = Program(tuple(self._code), tuple(self._ends), self._next, 1, self._nfe, self.noise_draws,
                          self.eval_times, eval_grid, grid, solver, dict(self.coefficients))
        return _with_liveness(program)

