"""Interpolatory auto-encoder (IAE) with a physical-parameter head, and an exact Doppler shift.

The IAE (Bobin et al.) encodes spectra into a latent space, encodes a few *anchor* spectra with the
same encoder, and decodes any spectrum from a barycentre ``sum_k lambda_k z_k`` of the anchor codes
(``sum lambda = 1``). Here the anchors are the spectra at the corners of the parameter box, and two
small maps learned jointly with the auto-encoder tie the barycentric weights to physics:

* ``lambda_from_theta``: theta -> lambda (so ``spectrum(theta)`` decodes from physical parameters and
  SUSHI optimises physical parameters directly, through this map);
* ``theta_from_lambda``: lambda -> theta (a read-out, for fits done in lambda space).

Encoder and decoder are MLPs with residual shortcuts; the decoder outputs coefficients on a fixed PCA
basis of log-spectra, then a softmax gives unit-sum spectra.

Doppler mode (models with a ``velocity`` parameter trained from the simulator, e.g. the shipped
thermal IAEs). A learned model cannot resolve the Doppler shift to tens of km/s (a 50 km/s shift
changes a spectrum by ~2e-4), so the velocity is applied exactly instead of learned:

* the decoder outputs the **rest-frame** photon spectrum, as masses on a rest-frame energy grid
  (``rest_edges``): the response's input grid, subdivided (down to 1/64 of a bin) only where the
  rest spectra have sub-bin structure (the narrow lines), so that line centroids are exact;
* the shift is exact: with ``s = 1 - v/c`` (E_obs = E_rest s, as in ``core.physics``), the photon
  flux in an observed input bin [E_i, E_i+1] is ``Phi(E_i+1 / s) - Phi(E_i / s)``, ``Phi`` the
  cumulative rest-frame spectrum (piecewise-linear, i.e. uniform density inside each rest bin),
  evaluated differentiably in float64 (float32 loses the faint bins to cancellation);
* the observed input-bin fluxes are folded with ``fold`` = transmission x ARF x RMF (a buffer of the
  model, so absorption fixed in the preset is applied in the observer frame as the simulator does)
  and normalised to unit sum over the channels.

The IAE itself is unchanged in spirit: anchors are the observed spectra at the 2^P corners of the
full box, encoded by the encoder, which returns a shape code plus an estimate of the velocity
coordinate. An anchor's code is (shape code, velocity coordinate of its corner); anchors that differ
only in velocity share one shape code (the mean of their encodings), so the barycentre of anchor
codes with weights lambda (sum 1) is (shape code, velocity coordinate), decoded as above. The
barycentric weights factor into shape weights (learned maps to and from the shape parameters, e.g.
kT) times the two linear weights of the velocity coordinate: ``lambda_from_theta`` carries the
velocity exactly and ``theta_from_lambda`` reads it out exactly; SUSHI still maps the velocity as a
physical parameter.
"""

from __future__ import annotations

import itertools

import torch

from napari_sushi.core.physics.grid import C_KMS
from napari_sushi.core.spectral.base import ModelMeta, SpectralModel
from napari_sushi.core.spectral.nets import ParamScaler, ResMLP


def shifted_bin_masses(
    mass: torch.Tensor, rest_edges: torch.Tensor, obs_edges: torch.Tensor, s: torch.Tensor
) -> torch.Tensor:
    """Rest-frame bin masses (n, R) on ``rest_edges`` (R+1) seen with Doppler factor s (n,) = E_obs/E_rest:
    masses (n, N) in the observed bins ``obs_edges`` (N+1), exactly for a uniform density in each rest
    bin. Differentiable in ``mass`` and ``s``; computed in float64 except on devices without it."""
    wd = torch.float32 if mass.device.type == "mps" else torch.float64
    m = mass.to(wd)
    r = rest_edges.to(wd)
    cum = torch.nn.functional.pad(torch.cumsum(m, dim=1), (1, 0))  # (n, R+1) CDF at the rest edges
    x = obs_edges.to(wd)[None, :] / s.to(wd)[:, None]  # rest energies of the observed edges (n, N+1)
    x = torch.minimum(torch.maximum(x, r[0]), r[-1])  # beyond the grid: no flux
    k = (torch.searchsorted(r, x.detach().contiguous(), right=True) - 1).clamp(0, r.numel() - 2)
    width = (r[1:] - r[:-1])[k]
    dens = torch.gather(m, 1, k) / width
    phi = torch.gather(cum, 1, k) + (x - r[k]) * dens
    return phi[:, 1:] - phi[:, :-1]


def shifted_folded(
    mass: torch.Tensor, rest_edges: torch.Tensor, obs_edges: torch.Tensor, s: torch.Tensor, fold: torch.Tensor
) -> torch.Tensor:
    """Unit-sum channel spectra (n, C) of rest-frame masses (n, R) seen with Doppler factor s (n,):
    :func:`shifted_bin_masses` onto the observed bins, folded with ``fold`` (N, C), normalised."""
    counts = shifted_bin_masses(mass, rest_edges, obs_edges, s).to(fold.dtype) @ fold
    return counts / counts.sum(1, keepdim=True)


class IAEModel(SpectralModel):
    """IAE whose ``spectrum(theta)`` is ``decode(lambda_from_theta(theta) @ anchor_codes)``.

    ``doppler``: None (plain IAE on channel log-spectra), or ``{"velocity_index": j, "n_rest": R,
    "n_obs": N}`` for the exact-Doppler mode described in the module docstring (buffers
    ``rest_edges_nkev`` (R+1), ``obs_edges_nkev`` (N+1) in 1e-9 keV, ``fold`` (N, C)).
    """

    basis: torch.Tensor  # buffers (registered in __init__)
    mean: torch.Tensor
    coef_scale: torch.Tensor
    in_mean: torch.Tensor
    in_scale: torch.Tensor
    anchors: torch.Tensor
    anchor_codes: torch.Tensor
    rest_edges_nkev: torch.Tensor  # Doppler mode only
    obs_edges_nkev: torch.Tensor
    fold: torch.Tensor

    def __init__(
        self,
        meta: ModelMeta,
        scales: list[str],
        n_components: int,
        latent: int = 16,
        width: int = 128,
        blocks: int = 2,
        head_width: int = 64,
        doppler: dict | None = None,
    ) -> None:
        super().__init__(meta)
        P, C, K = len(meta.parameters), meta.n_channels, int(n_components)
        self.latent, self.width, self.blocks, self.head_width = int(latent), int(width), int(blocks), int(head_width)
        self.doppler: dict[str, int] | None = None if doppler is None else {k: int(v) for k, v in doppler.items()}
        self.n_anchors = 2**P
        self.scaler = ParamScaler([p.low for p in meta.parameters], [p.high for p in meta.parameters], scales)
        corners = self.corner_units(P)
        if self.doppler is None:
            n_out, n_shape, n_spec = self.latent, self.n_anchors, C
            self.shape_index = list(range(P))
        else:
            vi = self.doppler["velocity_index"]
            if not 0 <= vi < P or scales[vi] != "linear":
                raise ValueError("the Doppler mode needs a linear 'velocity' parameter")
            self.shape_index = [j for j in range(P) if j != vi]
            n_out, n_shape, n_spec = self.latent + 1, 2 ** (P - 1), self.doppler["n_rest"]
            # energy grids as integers (1e-9 keV units): exact, and untouched by .float()/.to(dtype)
            self.register_buffer("rest_edges_nkev", torch.zeros(self.doppler["n_rest"] + 1, dtype=torch.int64))
            self.register_buffer("obs_edges_nkev", torch.zeros(self.doppler["n_obs"] + 1, dtype=torch.int64))
            self.register_buffer("fold", torch.zeros(self.doppler["n_obs"], C))
            shape_corners = self.corner_units(P - 1)
            # corner k -> its shape corner a and velocity corner b (0: low, 1: high)
            sc = corners[:, self.shape_index]
            self._shape_of = [int((shape_corners == row).all(1).nonzero()[0]) for row in sc]
            self._vel_of = [int(c[vi] > 0) for c in corners]
        self.encoder = ResMLP(C, n_out, self.width, self.blocks)
        self.decoder = ResMLP(self.latent, K, self.width, self.blocks)
        self.theta_to_lambda = ResMLP(len(self.shape_index), n_shape, self.head_width, 2)
        self.lambda_to_theta = ResMLP(n_shape, len(self.shape_index), self.head_width, 2)
        self.register_buffer("basis", torch.zeros(K, n_spec))
        self.register_buffer("mean", torch.zeros(n_spec))
        self.register_buffer("coef_scale", torch.ones(K))
        self.register_buffer("in_mean", torch.zeros(C))
        self.register_buffer("in_scale", torch.ones(C))
        self.register_buffer("anchors", torch.zeros(self.n_anchors, C))  # log-spectra of the corner spectra
        self.register_buffer("anchor_codes", torch.zeros(self.n_anchors, n_out))  # cached after training

    @property
    def rest_edges(self) -> torch.Tensor:
        """Rest-frame grid edges (keV, float64) of the Doppler mode."""
        return self.rest_edges_nkev.to(torch.float64) * 1e-9

    @property
    def obs_edges(self) -> torch.Tensor:
        """Observed input-energy bin edges (keV, float64) of the Doppler mode (the response's input grid)."""
        return self.obs_edges_nkev.to(torch.float64) * 1e-9

    def set_grids(self, rest_edges, obs_edges) -> None:
        """Store the Doppler-mode grids (keV), rounded to 1e-9 keV."""
        with torch.no_grad():
            self.rest_edges_nkev.copy_(torch.round(torch.as_tensor(rest_edges, dtype=torch.float64) * 1e9).long())
            self.obs_edges_nkev.copy_(torch.round(torch.as_tensor(obs_edges, dtype=torch.float64) * 1e9).long())

    @staticmethod
    def corner_units(P: int) -> torch.Tensor:
        """(2^P, P) corners of [-1, 1]^P, in the anchor order."""
        return torch.tensor(list(itertools.product([-1.0, 1.0], repeat=P))).reshape(2**P, P)

    def config(self) -> dict:
        return {
            "scales": self.scaler.scales,
            "n_components": int(self.basis.shape[0]),
            "latent": self.latent,
            "width": self.width,
            "blocks": self.blocks,
            "head_width": self.head_width,
            "doppler": self.doppler,
        }

    @classmethod
    def from_config(cls, meta: ModelMeta, config: dict) -> "IAEModel":
        return cls(
            meta,
            list(config["scales"]),
            int(config["n_components"]),
            int(config["latent"]),
            int(config["width"]),
            int(config["blocks"]),
            int(config["head_width"]),
            config.get("doppler"),
        )

    # -- the auto-encoder ------------------------------------------------------------------------
    def encode_log(self, log_spectra: torch.Tensor) -> torch.Tensor:
        """Latent codes (n, latent) of log unit-sum spectra (n, C); in Doppler mode (n, latent + 1), the
        last column being the encoder's estimate of the velocity coordinate (-1..1 over the box)."""
        return self.encoder((log_spectra - self.in_mean) / self.in_scale)

    def codes_of_anchors(self) -> torch.Tensor:
        """Anchor codes: recomputed with the encoder while training, the cached buffer in eval mode.

        Doppler mode: (shape code shared by the corners of equal shape parameters, corner velocity)."""
        if not self.training:
            return self.anchor_codes
        z = self.encode_log(self.anchors)
        if self.doppler is None:
            return z
        shape = torch.tensor(self._shape_of, device=z.device)
        n_shape = int(shape.max()) + 1
        zs = torch.zeros(n_shape, self.latent, dtype=z.dtype, device=z.device).index_add(0, shape, z[:, :-1])
        zs = zs / torch.bincount(shape, minlength=n_shape)[:, None].to(z.dtype)
        vel = torch.tensor(self._vel_of, dtype=z.dtype, device=z.device) * 2.0 - 1.0
        return torch.cat([zs[shape], vel[:, None]], dim=1)

    def refresh_anchor_codes(self) -> None:
        was = self.training
        self.train(True)
        with torch.no_grad():
            self.anchor_codes.copy_(self.codes_of_anchors())
        self.train(was)

    @staticmethod
    def _affine_weights(codes: torch.Tensor, Za: torch.Tensor) -> torch.Tensor:
        """lambda (n, A), sum 1, whose barycentre of the rows of Za is closest to ``codes`` (least squares)."""
        A = Za.shape[0]
        G = Za @ Za.T + 1e-6 * torch.eye(A, dtype=Za.dtype, device=Za.device)
        Gi = torch.linalg.inv(G)
        one = torch.ones(A, dtype=Za.dtype, device=Za.device)
        a = (codes @ Za.T) @ Gi  # unconstrained solution (n, A)
        gi1 = Gi @ one
        mu = (1.0 - a.sum(1, keepdim=True)) / (one @ gi1)
        return a + mu * gi1

    def _combine(self, lam_shape: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Doppler mode: corner weights (n, A) = shape weights (n, A/2) x linear velocity weights."""
        w = torch.stack([(1.0 - u) * 0.5, (1.0 + u) * 0.5], dim=1)
        return lam_shape[:, self._shape_of] * w[:, self._vel_of]

    def _shape_marginal(self, lam: torch.Tensor) -> torch.Tensor:
        shape = torch.tensor(self._shape_of, device=lam.device)
        return torch.zeros(lam.shape[0], int(shape.max()) + 1, dtype=lam.dtype, device=lam.device).index_add(
            1, shape, lam
        )

    def barycenter_weights(self, codes: torch.Tensor, anchor_codes: torch.Tensor | None = None) -> torch.Tensor:
        """lambda (n, A), sum 1, whose barycentre of anchor codes is closest to ``codes`` (least squares;
        Doppler mode: shape weights from the shape codes times the weights of the velocity coordinate)."""
        Za = self.codes_of_anchors() if anchor_codes is None else anchor_codes
        if self.doppler is None:
            return self._affine_weights(codes, Za)
        shape_rows = [self._shape_of.index(a) for a in range(max(self._shape_of) + 1)]
        lam_s = self._affine_weights(codes[:, :-1], Za[shape_rows, :-1])
        return self._combine(lam_s, codes[:, -1])

    def decode_coefficients(self, lam: torch.Tensor, anchor_codes: torch.Tensor | None = None):
        """Log-spectrum (n, C) (plain mode) or (rest-frame log-masses (n, R), velocity coordinate (n,))."""
        Za = self.codes_of_anchors() if anchor_codes is None else anchor_codes
        code = lam @ Za
        if self.doppler is None:
            return self.mean + (self.decoder(code) * self.coef_scale) @ self.basis, None
        rest = self.mean + (self.decoder(code[:, :-1]) * self.coef_scale) @ self.basis
        return rest, code[:, -1]

    def fold_rest(self, rest_log: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Unit-sum channel spectra (n, C) of rest-frame log-masses (n, R) at velocity coordinates u (n,)."""
        assert self.doppler is not None  # Doppler mode
        vi = self.doppler["velocity_index"]
        lo, hi = self.scaler.lo[vi].to(u.dtype), self.scaler.hi[vi].to(u.dtype)
        v = lo + (u + 1.0) * 0.5 * (hi - lo)  # the velocity axis is linear
        mass = torch.softmax(rest_log, dim=1)
        wd = torch.float32 if mass.device.type == "mps" else torch.float64  # MPS has no float64
        return shifted_folded(
            mass, self.rest_edges_nkev.to(wd) * 1e-9, self.obs_edges_nkev.to(wd) * 1e-9, 1.0 - v / C_KMS, self.fold
        )

    def decode(self, lam: torch.Tensor, anchor_codes: torch.Tensor | None = None) -> torch.Tensor:
        """Unit-sum channel spectra (n, C) decoded from barycentric weights (n, A)."""
        out, u = self.decode_coefficients(lam, anchor_codes)
        return torch.softmax(out, dim=1) if u is None else self.fold_rest(out, u)

    # -- public lambda-space API -----------------------------------------------------------------
    def spectrum_from_lambda(self, lam: torch.Tensor) -> torch.Tensor:
        """Unit-sum spectra decoded from barycentric weights (n, A) (normalised to sum 1 here)."""
        lam = lam.to(self.basis.dtype)
        lam = lam - (lam.sum(1, keepdim=True) - 1.0) / lam.shape[1]
        return self.decode(lam)

    def lambda_from_spectrum(self, spectra: torch.Tensor) -> torch.Tensor:
        """Barycentric weights of spectra (n, C) (any positive scale): encode, project on the anchors."""
        s = spectra.to(self.basis.dtype).clamp_min(0)
        s = s / s.sum(1, keepdim=True)
        return self.barycenter_weights(self.encode_log(torch.log(s.clamp_min(1e-12))))

    def lambda_from_theta(self, theta: torch.Tensor) -> torch.Tensor:
        u = self.scaler.to_unit(theta.to(self.basis.dtype))
        out = self.theta_to_lambda(u[:, self.shape_index])
        out = out - (out.sum(1, keepdim=True) - 1.0) / out.shape[1]
        return out if self.doppler is None else self._combine(out, u[:, self.doppler["velocity_index"]])

    def theta_from_lambda(self, lam: torch.Tensor) -> torch.Tensor:
        """Physical parameters read out from barycentric weights (n, A) (Doppler mode: the velocity
        exactly, as the barycentre of the corner velocities)."""
        lam = lam.to(self.basis.dtype)
        if self.doppler is None:
            return self.scaler.from_unit(self.lambda_to_theta(lam))
        vi = self.doppler["velocity_index"]
        shape_u = self.lambda_to_theta(self._shape_marginal(lam))
        vel_u = lam @ (torch.tensor(self._vel_of, dtype=lam.dtype, device=lam.device) * 2.0 - 1.0)
        cols = list(shape_u.unbind(1))
        cols.insert(vi, vel_u)
        return self.scaler.from_unit(torch.stack(cols, dim=1))

    def _spectrum(self, theta: torch.Tensor) -> torch.Tensor:
        out = self.decode(self.lambda_from_theta(theta))
        return out.to(theta.dtype if theta.is_floating_point() else torch.float32)
