"""Interpolatory auto-encoder (IAE) with a physical-parameter head.

The IAE (Bobin et al.) encodes spectra into a latent space, encodes a few *anchor* spectra with the
same encoder, and decodes any spectrum from a barycentre ``sum_k lambda_k z_k`` of the anchor codes
(``sum lambda = 1``). Here the anchors are the spectra at the corners of the parameter box, and two
small maps learned jointly with the auto-encoder tie the barycentric weights to physics:

* ``lambda_from_theta``: theta -> lambda (so ``spectrum(theta)`` decodes from physical parameters and
  SUSHI optimises physical parameters directly, through this map);
* ``theta_from_lambda``: lambda -> theta (a read-out, for fits done in lambda space).

Encoder and decoder are MLPs with residual shortcuts; the decoder outputs coefficients on a fixed PCA
basis of log-spectra, then a softmax gives unit-sum spectra.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from napari_sushi.core.spectral.base import ModelMeta, SpectralModel
from napari_sushi.core.spectral.nets import ParamScaler, ResMLP


class IAEModel(SpectralModel):
    """IAE whose ``spectrum(theta)`` is ``decode(lambda_from_theta(theta) @ anchor_codes)``."""

    def __init__(self, meta: ModelMeta, scales: list[str], n_components: int, latent: int = 16,
                 width: int = 128, blocks: int = 2, head_width: int = 64) -> None:
        super().__init__(meta)
        P, C, K = len(meta.parameters), meta.n_channels, int(n_components)
        self.latent, self.width, self.blocks, self.head_width = int(latent), int(width), int(blocks), int(head_width)
        self.n_anchors = 2**P
        self.scaler = ParamScaler([p.low for p in meta.parameters], [p.high for p in meta.parameters], scales)
        self.encoder = ResMLP(C, self.latent, self.width, self.blocks)
        self.decoder = ResMLP(self.latent, K, self.width, self.blocks)
        self.theta_to_lambda = ResMLP(P, self.n_anchors, self.head_width, 2)
        self.lambda_to_theta = ResMLP(self.n_anchors, P, self.head_width, 2)
        self.register_buffer("basis", torch.zeros(K, C))
        self.register_buffer("mean", torch.zeros(C))
        self.register_buffer("coef_scale", torch.ones(K))
        self.register_buffer("in_mean", torch.zeros(C))
        self.register_buffer("in_scale", torch.ones(C))
        self.register_buffer("anchors", torch.zeros(self.n_anchors, C))  # log-spectra of the corner spectra
        self.register_buffer("anchor_codes", torch.zeros(self.n_anchors, self.latent))  # cached after training

    @staticmethod
    def corner_units(P: int) -> torch.Tensor:
        """(2^P, P) corners of [-1, 1]^P, in the anchor order."""
        return torch.tensor(list(itertools.product([-1.0, 1.0], repeat=P)))

    def config(self) -> dict:
        return {"scales": self.scaler.scales, "n_components": int(self.basis.shape[0]), "latent": self.latent,
                "width": self.width, "blocks": self.blocks, "head_width": self.head_width}

    @classmethod
    def from_config(cls, meta: ModelMeta, config: dict) -> "IAEModel":
        return cls(meta, list(config["scales"]), int(config["n_components"]), int(config["latent"]),
                   int(config["width"]), int(config["blocks"]), int(config["head_width"]))

    # -- the auto-encoder ------------------------------------------------------------------------
    def encode_log(self, log_spectra: torch.Tensor) -> torch.Tensor:
        """Latent codes (n, latent) of log unit-sum spectra (n, C)."""
        return self.encoder((log_spectra - self.in_mean) / self.in_scale)

    def codes_of_anchors(self) -> torch.Tensor:
        """Anchor codes: recomputed with the encoder while training, the cached buffer in eval mode."""
        return self.encode_log(self.anchors) if self.training else self.anchor_codes

    def refresh_anchor_codes(self) -> None:
        with torch.no_grad():
            self.anchor_codes.copy_(self.encode_log(self.anchors))

    def barycenter_weights(self, codes: torch.Tensor, anchor_codes: torch.Tensor | None = None) -> torch.Tensor:
        """lambda (n, A), sum 1, whose barycentre of anchor codes is closest to ``codes`` (least squares)."""
        Za = self.codes_of_anchors() if anchor_codes is None else anchor_codes
        A = Za.shape[0]
        G = Za @ Za.T + 1e-6 * torch.eye(A, dtype=Za.dtype, device=Za.device)
        Gi = torch.linalg.inv(G)
        one = torch.ones(A, dtype=Za.dtype, device=Za.device)
        a = (codes @ Za.T) @ Gi  # unconstrained solution (n, A)
        gi1 = Gi @ one
        mu = (1.0 - a.sum(1, keepdim=True)) / (one @ gi1)
        return a + mu * gi1

    def decode_log(self, lam: torch.Tensor, anchor_codes: torch.Tensor | None = None) -> torch.Tensor:
        Za = self.codes_of_anchors() if anchor_codes is None else anchor_codes
        c = self.decoder(lam @ Za) * self.coef_scale
        return self.mean + c @ self.basis

    # -- public lambda-space API -----------------------------------------------------------------
    def spectrum_from_lambda(self, lam: torch.Tensor) -> torch.Tensor:
        """Unit-sum spectra decoded from barycentric weights (n, A) (normalised to sum 1 here)."""
        lam = lam.to(self.basis.dtype)
        lam = lam - (lam.sum(1, keepdim=True) - 1.0) / lam.shape[1]
        return torch.softmax(self.decode_log(lam), dim=1)

    def lambda_from_spectrum(self, spectra: torch.Tensor) -> torch.Tensor:
        """Barycentric weights of spectra (n, C) (any positive scale): encode, project on the anchors."""
        s = spectra.to(self.basis.dtype).clamp_min(0)
        s = s / s.sum(1, keepdim=True)
        return self.barycenter_weights(self.encode_log(torch.log(s.clamp_min(1e-12))))

    def lambda_from_theta(self, theta: torch.Tensor) -> torch.Tensor:
        out = self.theta_to_lambda(self.scaler.to_unit(theta.to(self.basis.dtype)))
        return out - (out.sum(1, keepdim=True) - 1.0) / out.shape[1]

    def theta_from_lambda(self, lam: torch.Tensor) -> torch.Tensor:
        """Physical parameters read out from barycentric weights (n, A)."""
        return self.scaler.from_unit(self.lambda_to_theta(lam.to(self.basis.dtype)))

    def _spectrum(self, theta: torch.Tensor) -> torch.Tensor:
        out = torch.softmax(self.decode_log(self.lambda_from_theta(theta)), dim=1)
        return out.to(theta.dtype if theta.is_floating_point() else torch.float32)
