"""Property tests for your own schedules: check functions and hypothesis strategies.

A schedule you declare takes part in every derivation schedalg makes; these checks
verify, for that schedule, each identity the package relies on (MATH.md section 1):
compiled vs symbolic at 30 digits, derivatives vs autograd, the inverse round trip,
finite end values, prediction conversions, ``e* = sigma^2 |lambda'|/2``; for a pair,
the time map and scale, ``tau'`` and ``c'``, ``E* = c^2 |tau'| e*(tau)``, drift transfer and
the pathwise SDE conversion. A failure raises one :class:`IdentityError` listing each
failed identity with a point where it fails::

    import sympy as sp, schedalg as sa
    from schedalg.testing import check_schedule, check_conversion

    mine = sa.Schedule(alpha=sa.t**2, sigma=1 - sa.t, name="mine")
    check_schedule(mine)                          # raises IdentityError if anything fails
    check_conversion(sa.schedules.linear(), mine)

With hypothesis (optional; ``pip install hypothesis``), the strategies draw schedules from
a grammar of the library's building blocks and user-style expressions::

    from hypothesis import given
    from schedalg.testing import strategies as sst

    @given(sst.schedule_pairs())
    def test_pairs(pair):
        check_conversion(*pair)

The check functions need only the core dependencies.
"""

from ._checks import CheckReport as CheckReport
from ._checks import IdentityError as IdentityError
from ._checks import check_conversion as check_conversion
from ._checks import check_points as check_points
from ._checks import check_schedule as check_schedule
from . import _strategies as strategies  # noqa: E402 - hypothesis is imported lazily inside

__all__ = ["CheckReport", "IdentityError", "check_conversion", "check_points", "check_schedule", "strategies"]
