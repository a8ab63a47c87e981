"""The flow-map network of the digits example: ``v_theta(x, s, t)`` with ``X_{s,t}(x) = x + (t - s) v``.

The teacher's residual MLP (``examples/digits_flow/model.py``) with a second time input:
the embedding of the start time ``s`` is the teacher's, and an embedding of the gap
``t - s`` (zero-initialised) is added to it. Built from the teacher's weights, the student
starts as ``v_{s,t}(x) = b_s(x)``, i.e. ``X_{s,t}`` is one Euler step of the teacher's ODE,
and training only has to learn the correction (Boffi, Albergo & Vanden-Eijnden, arXiv
2406.07507: the diagonal ``v_{t,t}`` is the velocity).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
#: Where train.py writes the flow-map weights (one file per loss).
WEIGHTS_DIR = HERE


def teacher_module():
    """``examples/digits_flow/model.py`` as a module (the teacher network and the data split)."""
    spec = importlib.util.spec_from_file_location("digits_flow_model", ROOT / "examples" / "digits_flow" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FlowMapMLP(nn.Module):
    """``v_theta(x, s, t)``: (B, 64) states, (B,) start and end times in [0, 1] -> (B, 64)."""

    def __init__(self, dim: int = 64, width: int = 256, depth: int = 3, time_features: int = 64):
        super().__init__()
        teacher = teacher_module()
        self.config = {"dim": dim, "width": width, "depth": depth, "time_features": time_features}
        self.body = teacher.VelocityMLP(dim, width, depth, time_features)
        self.gap = nn.Sequential(teacher.TimeFeatures(time_features), nn.Linear(time_features, width))
        nn.init.zeros_(self.gap[1].weight)
        nn.init.zeros_(self.gap[1].bias)

    @classmethod
    def from_teacher(cls, teacher: nn.Module) -> "FlowMapMLP":
        """A student whose map is one Euler step of ``teacher`` (``v_{s,t} = b_s``)."""
        student = cls(**teacher.config)
        student.body.load_state_dict(teacher.state_dict())
        return student

    def forward(self, x: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        body = self.body
        time = body.time(s.to(x.dtype)) + self.gap(t.to(x.dtype) - s.to(x.dtype))
        h = body.inp(x)
        for block in body.blocks:
            h = block(h, time)
        return body.out(h)


def load_flow_map(path: Path) -> FlowMapMLP:
    """The trained network (float32) from ``path`` (safe loading: tensors and plain values only)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = FlowMapMLP(**payload["config"])
    model.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})  # stored in float16
    return model.eval().requires_grad_(False)
