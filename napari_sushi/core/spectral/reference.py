"""The reference emulator of the published code: log-spectrum -> PCA -> dense GELU MLP (11 x 256).

Kept as a family (``reference``) so the benchmark can compare the shipped emulator against it on
the same data, and so users can train it; it is not the default for any shipped model.
"""

from __future__ import annotations

import torch
from torch import nn

from napari_sushi.core.spectral.base import ModelMeta, SpectralModel
from napari_sushi.core.spectral.nets import ParamScaler


class PCAMLPModel(SpectralModel):
    """Spectrum(theta) = softmax(mean + (MLP(theta) * coef_scale) @ basis)."""

    basis: torch.Tensor  # buffers (registered in __init__)
    mean: torch.Tensor
    coef_scale: torch.Tensor

    def __init__(
        self, meta: ModelMeta, scales: list[str], n_components: int, width: int = 256, depth: int = 11
    ) -> None:
        super().__init__(meta)
        self.width, self.depth = int(width), int(depth)
        self.scaler = ParamScaler([p.low for p in meta.parameters], [p.high for p in meta.parameters], scales)
        layers: list[nn.Module] = []
        n_in = len(meta.parameters)
        for _ in range(self.depth):
            layers += [nn.Linear(n_in, self.width), nn.GELU()]
            n_in = self.width
        layers.append(nn.Linear(n_in, int(n_components)))
        self.net = nn.Sequential(*layers)
        C = meta.n_channels
        self.register_buffer("basis", torch.zeros(int(n_components), C))
        self.register_buffer("mean", torch.zeros(C))
        self.register_buffer("coef_scale", torch.ones(int(n_components)))

    def config(self) -> dict:
        return {
            "scales": self.scaler.scales,
            "n_components": int(self.basis.shape[0]),
            "width": self.width,
            "depth": self.depth,
        }

    @classmethod
    def from_config(cls, meta: ModelMeta, config: dict) -> "PCAMLPModel":
        return cls(
            meta, list(config["scales"]), int(config["n_components"]), int(config["width"]), int(config["depth"])
        )

    def log_spectrum(self, theta: torch.Tensor) -> torch.Tensor:
        u = self.scaler.to_unit(theta.to(self.basis.dtype))
        c = self.net(u) * self.coef_scale
        return self.mean + c @ self.basis

    def _spectrum(self, theta: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.log_spectrum(theta), dim=1).to(
            theta.dtype if theta.is_floating_point() else torch.float32
        )
