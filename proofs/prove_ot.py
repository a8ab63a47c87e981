"""Proofs of the identities the semi-discrete OT solver relies on, from the package's own score.

The solver ranks targets by ``laguerre_score(<z, y>, |y|^2, h) = |y|^2 - h - 2 <z, y>``
(schedalg.ot.laguerre_score, called here on SymPy expressions):

1. it is the Laguerre cost ``|z - y|^2 - h`` less ``|z|^2``, which does not depend on the
   target, so both give the same cells (in any dimension; D = 4 symbolic coordinates here);
2. DPM-OT's form ``argmax_j <z, y_j> + h'_j`` is the same cell with ``h' = (h - |y|^2) / 2``;
3. the closed forms used by tests/test_ot.py: two targets ``+-u`` with the potential
   ``h_- = -h_+ = 2 |u| c`` split space at ``<z, u>/|u| = c``; four targets ``(+-1, +-1)``
   with ``h = -2 a s1 - 2 b s2`` have the shifted quadrants ``sign(z - (a, b)) = s`` as cells.
"""

import itertools

import sympy as sp

from schedalg.ot import laguerre_score

D = 4
Z = sp.Matrix(sp.symbols(f"z0:{D}", real=True))
Y = sp.Matrix(sp.symbols(f"y0:{D}", real=True))
H = sp.Symbol("h", real=True)


def score(z, y, h):
    return laguerre_score((z.T * y)[0], (y.T * y)[0], h)


def test_score_is_the_laguerre_cost_less_a_common_term():
    cost = ((Z - Y).T * (Z - Y))[0] - H
    assert sp.expand(score(Z, Y, H) + (Z.T * Z)[0] - cost) == 0


def test_dpm_ot_potential_gives_the_same_cells():
    h_prime = (H - (Y.T * Y)[0]) / 2
    assert sp.expand(-score(Z, Y, H) / 2 - ((Z.T * Y)[0] + h_prime)) == 0


def test_two_target_half_space():
    u = Y
    norm_u = sp.sqrt((u.T * u)[0])
    c = sp.Symbol("c", real=True)
    h_minus, h_plus = 2 * norm_u * c, -2 * norm_u * c
    difference = score(Z, u, h_plus) - score(Z, -u, h_minus)  # < 0 exactly in the cell of +u
    assert sp.simplify(difference - 4 * norm_u * (c - (Z.T * u)[0] / norm_u)) == 0


def test_quadrant_cells():
    z1, z2, a, b = sp.symbols("z1 z2 a b", real=True)
    z = sp.Matrix([z1, z2])
    for s1, s2 in itertools.product((-1, 1), repeat=2):
        y = sp.Matrix([s1, s2])
        value = score(z, y, -2 * a * s1 - 2 * b * s2)
        # 2 - 2 s1 (z1 - a) - 2 s2 (z2 - b): least where s = sign(z - (a, b))
        assert sp.expand(value - (2 - 2 * s1 * (z1 - a) - 2 * s2 * (z2 - b))) == 0
