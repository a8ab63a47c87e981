"""The command line with a user's own schedule (module or file), output formats, and clean errors."""

from __future__ import annotations

import sys
import textwrap

import pytest

from schedalg.__main__ import main

USER_FILE = textwrap.dedent('''
    import sympy as sp
    import schedalg as sa

    t = sa.t

    def sigmoid(slope=12.0):
        """log-SNR = -slope (t - 1/2): a user's schedule, written as a paper writes it."""
        lam = -slope * (t - sp.Rational(1, 2))
        return sa.Schedule(alpha=sp.sqrt(sp.exp(lam) / (1 + sp.exp(lam))), sigma=sp.sqrt(1 / (1 + sp.exp(lam))),
                           name=f"sigmoid({slope})")

    quarter = sa.Schedule(alpha=1 - t, sigma=t, name="quarter")
    not_a_schedule = 3
''')


@pytest.fixture()
def user_file(tmp_path, monkeypatch):
    path = tmp_path / "my_schedules.py"
    path.write_text(USER_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield path
    sys.modules.pop("my_schedules", None)


def test_show_a_factory_from_a_file_with_parameters(user_file, capsys):
    assert main(["show", f"{user_file}:sigmoid", "--param", "slope=4"]) == 0
    out = capsys.readouterr().out
    assert "sigmoid(4.0)" in out and "log_snr" in out and "t(lambda)" in out


def test_show_a_schedule_object_from_a_module(user_file, capsys):
    assert main(["show", "my_schedules:quarter"]) == 0
    assert "'quarter'" in capsys.readouterr().out


@pytest.mark.parametrize("fmt, marker", [("latex", "\\"), ("pretty", "─")])
def test_show_formats(fmt, marker, capsys):
    assert main(["show", "cosine", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert marker in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["show", "linear", "--param", "n=abc"], "a number for --param n"),
     (["show", "no_such_module_xyz:thing"], "importable module"),
     (["show", "my_schedules:missing"], "attribute 'missing'"),
     (["show", "my_schedules:not_a_schedule"], "a Schedule or a function"),
     (["show", "my_schedules:quarter", "--param", "a=1"], "no --param for a Schedule object"),
     (["show", "./does/not/exist.py:x"], "no such file"),
     (["show", "my_schedules:sigmoid", "--param", "bogus=1"], "parameters of"),
     (["export", "--schedule", "linear", "--denoiser", "gaussian:1,x", "--out", "x.pt"], "two numbers")],
)
def test_bad_arguments_exit_2_with_a_message(user_file, argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
