"""The command line: list, show, solvers, export (and its errors)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import schedalg as sa
from schedalg.__main__ import main
from schedalg.denoisers import GaussianDenoiser
from schedalg.sampling import Sampler, TimeGrid, load_sampler, per_sample_normal


def test_list_names_every_library_schedule(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in sa.schedules.LIBRARY:
        assert name in out


def test_show_prints_derivations_with_parameters(capsys):
    assert main(["show", "vp_linear", "--param", "beta_max=10"]) == 0
    out = capsys.readouterr().out
    assert "e_star" in out and "t(lambda)" in out and "direction -1" in out
    assert "2.475" in out  # (beta_max - beta_min)/4 with beta_max = 10


def test_solvers_table(capsys):
    assert main(["solvers"]) == 0
    out = capsys.readouterr().out
    assert "dpmpp_3m" in out and "heun" in out


def test_export_writes_a_sampler_equal_to_the_library_one(tmp_path, capsys):
    out_path = tmp_path / "s.safetensors"
    code = main(["export", "--schedule", "linear", "--solver", "heun", "--steps", "5", "--t-end", "0.95",
                 "--denoiser", "gaussian:0.5,0.3", "--shape", "3,2", "--out", str(out_path)])
    assert code == 0 and out_path.is_file() and (tmp_path / "s_loader.py").is_file()
    schedule = sa.schedules.linear()
    sampler = Sampler(GaussianDenoiser(schedule, 0.5, 0.3), TimeGrid.uniform(schedule, 5, t_end=0.95), "heun")
    noise = per_sample_normal((3, 2), 0)
    assert torch.equal(load_sampler(out_path)(noise), sampler(noise))


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["show", "nope"], "schedule among"),
     (["show", "vp_linear", "--param", "beta_max"], "NAME=VALUE"),
     (["show", "linear", "--param", "n=3"], "parameters of"),
     (["export", "--schedule", "linear", "--shape", "a,b", "--out", "x.pt"], "--shape"),
     (["export", "--schedule", "linear", "--denoiser", "nonsense", "--out", "x.pt"], "--denoiser")],
)
def test_bad_input_exits_with_status_2_and_a_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "schedalg", "solvers"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "euler_maruyama" in result.stdout
