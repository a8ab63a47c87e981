"""A small digit classifier for measuring mode mixture (DPM-OT's mixed-sample rate).

An MLP ``64 -> 128 -> 128 -> 10`` (SiLU, dropout 0.1 in training) on scikit-learn's 8x8
digits in the pixel scale of ``schedalg.datasets.digits()`` (``p/8 - 1`` in [-1, 1]), trained
on the same 1400-digit split as ``examples/digits_flow`` (its 397 held-out digits are the
test set). ``load_classifier()`` reads the committed ``weights.pt`` with
``torch.load(weights_only=True)``; ``probabilities(x)`` gives the softmax for ``(B, 64)``
inputs (any float dtype).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
#: Where train.py writes the classifier weights.
WEIGHTS = HERE / "weights.pt"


def load_digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(train_x, train_y, test_x, test_y)``: the digits_flow example's split, with labels."""
    from sklearn.datasets import load_digits

    spec = importlib.util.spec_from_file_location("digits_flow_model", HERE.parent / "digits_flow" / "model.py")
    flow = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flow)
    images = torch.as_tensor(load_digits().data, dtype=torch.float32) / 8 - 1
    labels = torch.as_tensor(load_digits().target, dtype=torch.long)
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(flow.SPLIT_SEED))
    test, train = order[:flow.HELD_OUT], order[flow.HELD_OUT:]
    # the same rows as digits_flow's load_digits_split (checked in tests/test_ot_expressway.py)
    return images[train], labels[train], images[test], labels[test]


class DigitClassifier(nn.Module):
    """``(B, 64)`` pixels in [-1, 1] -> ``(B, 10)`` logits."""

    def __init__(self, width: int = 128, dropout: float = 0.1):
        super().__init__()
        self.config = {"width": width, "dropout": dropout}
        self.net = nn.Sequential(nn.Linear(64, width), nn.SiLU(), nn.Dropout(dropout),
                                 nn.Linear(width, width), nn.SiLU(), nn.Dropout(dropout), nn.Linear(width, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax class probabilities (float64) of ``(B, 64)`` inputs, in eval mode."""
        self.eval()
        return torch.softmax(self(x.reshape(x.shape[0], 64).to(torch.float32)).to(torch.float64), dim=1)


def load_classifier(path: Path = WEIGHTS) -> DigitClassifier:
    """The trained classifier (eval mode) from ``weights.pt``."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = DigitClassifier(**state["config"])
    model.load_state_dict(state["state_dict"])
    return model.eval()
