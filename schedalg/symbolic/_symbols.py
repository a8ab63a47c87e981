"""The symbols every derivation shares."""

import sympy as sp

#: Time, in the direction the schedule's paper writes it.
t = sp.Symbol("t", real=True)
#: Log signal-to-noise ratio, ``lambda = log(alpha^2 / sigma^2)``.
lam = sp.Symbol("lambda", real=True)
#: A second time symbol, for maps between two schedules (``tau(s)``).
s = sp.Symbol("s", real=True)
#: The value of ``tau(s)`` in a conversion's two-argument (``s``, ``TAU``) forms of ``c``, ``tau'``, ``c'``.
TAU = sp.Symbol("tau", real=True)
