"""Proofs for the Adams-Bashforth solvers (schedalg.sampling.solvers._adams).

Each proof starts from the weights the package derives (:func:`adams_weight_exprs`, the
expressions that are compiled and used by ``adams``) and reduces a residual to 0.
"""

import sympy as sp

from schedalg.sampling.solvers._adams import IPNDM_WEIGHTS, MAX_ORDER, NODES, adams_weight_exprs

u = sp.Symbol("u", real=True)


def test_uniform_steps_give_the_published_ipndm_weights():
    """On uniform steps (u_j = -j) the derived weights are 1; (3,-1)/2; (23,-16,5)/12; (55,-59,37,-9)/24."""
    for order in range(1, MAX_ORDER + 1):
        uniform = {NODES[j - 1]: -j for j in range(1, order)}
        derived = [sp.nsimplify(w.subs(uniform)) for w in adams_weight_exprs(order)]
        published = [sp.Rational(w.numerator, w.denominator) for w in IPNDM_WEIGHTS[order - 1]]
        assert [sp.simplify(a - b) for a, b in zip(derived, published)] == [0] * order


def test_weights_integrate_polynomials_of_degree_below_the_order_exactly():
    """sum_j w_j p(u_j) = int_0^1 p(u) du for p = u^m, m < k, for ANY distinct nodes u_1..u_{k-1}
    (u_0 = 0): the step x_{i+1} = x_i + h sum_j w_j b_{i-j} is exact when b is a polynomial of
    degree < k in t (t = t_i + h u)."""
    for order in range(1, MAX_ORDER + 1):
        nodes = (sp.Integer(0),) + NODES[: order - 1]
        weights = adams_weight_exprs(order)
        for m in range(order):
            residual = sum(w * node**m for w, node in zip(weights, nodes)) - sp.integrate(u**m, (u, 0, 1))
            assert sp.simplify(residual) == 0, (order, m)


def test_order_k_weights_do_not_integrate_degree_k():
    """The order is exactly k: degree k is not integrated exactly on uniform nodes (residual != 0)."""
    for order in range(1, MAX_ORDER + 1):
        nodes = [0] + [-j for j in range(1, order)]
        uniform = {NODES[j - 1]: -j for j in range(1, order)}
        weights = [w.subs(uniform) for w in adams_weight_exprs(order)]
        residual = sum(w * sp.Integer(n) ** order for w, n in zip(weights, nodes)) - sp.Rational(1, order + 1)
        assert sp.simplify(residual) != 0
