"""The thresholding phase's guard (engine._step_with_guard): how far it halves a step that raises the cost."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from napari_sushi.core.solver import engine
from napari_sushi.core.solver.engine import GUARD_MIN_STEP, State, _step_with_guard


class _Quadratic:
    """Per-pixel cost sum_k (U_k - target)^2, counting its evaluations (a stand-in for Problem.costs)."""

    def __init__(self, target: float) -> None:
        self.target = target
        self.calls = 0

    def costs(self, A: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return ((U - self.target) ** 2).sum(dim=0)


class _NoPenalty:
    """A regulariser whose proximal step does nothing (so only the step's own effect on the cost counts)."""

    def prox(self, U: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        return U

    def penalty(self, U: torch.Tensor) -> float:
        return 0.0


def _guard(problem: _Quadratic, U: torch.Tensor, zU: torch.Tensor):
    st = State(A=torch.ones(1, U.shape[1]), U=U.clone())
    c0 = problem.costs(st.A, st.U)
    problem.calls = 0
    old = float(c0.sum())
    out = _step_with_guard(
        problem,
        SimpleNamespace(step_rule="newton"),
        _NoPenalty(),
        st,
        st.A.clone(),
        zU,
        torch.ones_like(U),
        torch.zeros_like(U),
        c0,
        old,
        torch.zeros((), dtype=torch.int64),
    )
    return st, out


def test_guard_gives_up_at_a_quarter_step():
    # a step straight away from the minimum raises the cost at every fraction: tried at 1, 1/2 and 1/4
    # (three cost evaluations, not the ten it took when the guard halved down to 1/512), then given up
    problem = _Quadratic(target=0.0)
    U = torch.full((2, 5), 0.1)
    st, (cost, obj) = _guard(problem, U, U + 0.5)
    assert cost is None and obj is None
    assert torch.equal(st.U, U)  # the iterate stays where it was
    assert st.n_backtracks == 3 and problem.calls == 3
    assert GUARD_MIN_STEP == 0.25


def test_guard_accepts_a_shortened_step():
    # the full step overshoots the minimum (cost rises), half of it lands on the minimum: accepted there
    problem = _Quadratic(target=0.5)
    U = torch.full((1, 4), 0.3)
    st, (cost, obj) = _guard(problem, U, U + 0.6)  # full step to 0.9 (cost 0.16 > 0.04), half to 0.6
    assert cost is not None and cost < 0.04 * 4
    assert torch.allclose(st.U, torch.full((1, 4), 0.6))
    assert st.n_backtracks == 1 and problem.calls == 2


def test_guard_limit_is_what_the_engine_uses(monkeypatch):
    # a stricter limit stops the halving earlier: one evaluation at 1, none below
    monkeypatch.setattr(engine, "GUARD_MIN_STEP", 0.75)
    problem = _Quadratic(target=0.0)
    U = torch.full((1, 3), 0.2)
    st, (cost, _) = _guard(problem, U, U + 0.5)
    assert cost is None and problem.calls == 1
