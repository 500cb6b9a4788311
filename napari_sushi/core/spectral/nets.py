"""Building blocks shared by the network families: parameter scaling, residual MLPs, spectral loss."""

from __future__ import annotations

import torch
from torch import nn


class ParamScaler(nn.Module):
    """Maps physical parameters to [-1, 1] per axis (log axes in log) and back."""

    lo: torch.Tensor  # buffers (registered in __init__)
    hi: torch.Tensor

    def __init__(self, lows: list[float], highs: list[float], scales: list[str]) -> None:
        super().__init__()
        self.scales = list(scales)
        lo = [torch.log(torch.tensor(float(a))) if s == "log" else torch.tensor(float(a)) for a, s in zip(lows, scales)]
        hi = [
            torch.log(torch.tensor(float(b))) if s == "log" else torch.tensor(float(b)) for b, s in zip(highs, scales)
        ]
        self.register_buffer("lo", torch.stack(lo).to(torch.float32))
        self.register_buffer("hi", torch.stack(hi).to(torch.float32))

    def _log_mask(self, device: torch.device) -> torch.Tensor:
        return torch.tensor([s == "log" for s in self.scales], device=device)

    def to_unit(self, theta: torch.Tensor) -> torch.Tensor:
        m = self._log_mask(theta.device)
        t = torch.where(m, torch.log(torch.where(m, theta, torch.ones_like(theta)).clamp_min(1e-30)), theta)
        lo, hi = self.lo.to(theta.dtype), self.hi.to(theta.dtype)
        return 2.0 * (t - lo) / (hi - lo) - 1.0

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        lo, hi = self.lo.to(u.dtype), self.hi.to(u.dtype)
        t = lo + (u + 1.0) * 0.5 * (hi - lo)
        m = self._log_mask(u.device)  # exp only on log axes: exp(velocity) would overflow and poison gradients
        return torch.where(m, torch.exp(torch.where(m, t, torch.zeros_like(t))), t)


class ResBlock(nn.Module):
    """x + W2 gelu(W1 x): a residual shortcut so deep stacks train and can stay near identity."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.l1 = nn.Linear(width, width)
        self.l2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.l2(nn.functional.gelu(self.l1(x)))


class ResMLP(nn.Module):
    """in -> width -> n residual blocks -> out."""

    def __init__(self, n_in: int, n_out: int, width: int, blocks: int) -> None:
        super().__init__()
        self.inp = nn.Linear(n_in, width)
        self.blocks = nn.Sequential(*[ResBlock(width) for _ in range(blocks)])
        self.out = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(nn.functional.gelu(self.inp(x))))


def rel_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-spectrum relative L2 error ||pred - target|| / ||target|| (n,)."""
    return torch.linalg.vector_norm(pred - target, dim=1) / torch.linalg.vector_norm(target, dim=1)
