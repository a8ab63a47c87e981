"""The SymPy -> torch compile layer: stable forms, CSE, caching, inspectable source,
no SymPy work at evaluation time."""

import sympy as sp
import torch

import schedalg as sa
from schedalg.compile import compile_exprs, stabilize

t = sa.t


def test_stable_rewrites():
    expr = stabilize(sp.log(1 - sp.exp(-t)) + sp.exp(t) - 1)
    source = compile_exprs([expr], [t], "stable").source
    assert "expm1" in source
    x = torch.tensor([1e-300, 1e-20], dtype=torch.float64)
    out = compile_exprs([sp.log(1 + t)], [t], "log1p_check")(x)[0]
    torch.testing.assert_close(out, x, rtol=1e-15, atol=0)


def test_common_subexpressions_are_shared():
    compiled = compile_exprs([sp.exp(sp.sin(t) ** 2) + 1, sp.exp(sp.sin(t) ** 2) * t], [t], "cse_demo")
    assert compiled.source.count("torch.sin") == 1


def test_cache_returns_the_same_function():
    a = compile_exprs([sp.cos(t) * 3], [t], "cached")
    b = compile_exprs([sp.cos(t) * 3], [t], "cached")
    assert a is b


def test_constant_outputs_broadcast():
    out = compile_exprs([sp.Integer(2), sp.cos(sp.pi / 7)], [t], "consts")(torch.zeros(3, 2, dtype=torch.float32))
    assert all(o.shape == (3, 2) and o.dtype == torch.float32 for o in out)


def test_source_is_registered_for_tracebacks():
    import linecache

    compiled = compile_exprs([sp.sqrt(t)], [t], "traced")
    filename = compiled._fn.__code__.co_filename
    assert linecache.getline(filename, 1).startswith("def traced")


def test_no_sympy_at_evaluation(monkeypatch):
    """After the first call, evaluating a compiled schedule creates no SymPy objects."""
    compiled = sa.schedules.vp_linear().compile()
    tt = torch.linspace(0.01, 0.99, 5, dtype=torch.float64)
    compiled.evaluate(tt, "alpha", "sigma")
    compiled.alpha(tt)
    compiled.t_of_log_snr(compiled.log_snr(tt))

    def forbidden(*args, **kwargs):
        raise RuntimeError("SymPy was called during evaluation")

    monkeypatch.setattr(sp.Basic, "__new__", forbidden)
    monkeypatch.setattr(sp, "srepr", forbidden)
    compiled.evaluate(tt, "alpha", "sigma")
    compiled.alpha(tt)
    compiled.t_of_log_snr(compiled.log_snr(tt), check=False)


def test_unbound_symbols_refused():
    import pytest

    from schedalg.errors import UnboundSymbolError

    with pytest.raises(UnboundSymbolError):
        compile_exprs([t * sp.Symbol("k")], [t], "unbound")
