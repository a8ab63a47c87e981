"""Test your own schedule with pytest: every identity schedalg relies on, in a few lines.

    python -m pytest examples/test_my_schedule.py
"""

import sympy as sp

import schedalg as sa
from schedalg.testing import check_conversion, check_schedule

mine = sa.Schedule(alpha=sp.sin(sp.pi * sa.t / 2) ** 2, sigma=1 - sa.t, name="mine")  # data at t = 1


def test_my_schedule():
    check_schedule(mine)  # raises one IdentityError listing each failed identity and where


def test_my_schedule_converts_from_the_linear_path():
    check_conversion(sa.schedules.linear(), mine)
