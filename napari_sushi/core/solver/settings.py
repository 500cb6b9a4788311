"""What a fit is asked to do: components, their models, regularisation and stopping rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:  # annotations only: the settings (and the CLI's help) need no torch
    from napari_sushi.core.spectral.base import SpectralModel


@dataclass
class Component:
    """One emission component of the fit.

    name:   label used in outputs, e.g. "thermal" (must be unique within a fit).
    model:  the spectral model giving unit-sum spectra for this component.
    fixed:  parameter name -> value (float) or map held fixed during the fit.
    init:   parameter name -> initial value or map (default: the model's default); "amplitude" -> the
            component's initial amplitude map (expected counts; default: the pixel's counts shared equally).
            A map is the cube's image (ny, nx), or that image binned by any integer factor: it is
            binned or resampled to the fit's binning.
    """

    name: str
    model: SpectralModel
    fixed: dict[str, float | np.ndarray] = field(default_factory=dict)
    init: dict[str, float | np.ndarray] = field(default_factory=dict)


def unique_name(base: str, taken) -> str:
    """``base``, or ``base2``, ``base3``, ... : the first not in ``taken`` (component names must be unique)."""
    if base not in taken:
        return base
    i = 2
    while f"{base}{i}" in taken:
        i += 1
    return f"{base}{i}"


@dataclass
class FitSettings:
    """Regularisation, statistics, data selection, stopping and device choices.

    kmad:     regularisation strength; a float for every parameter map, or a dict keyed by
              "<component>.<parameter>" (missing keys use ``kmad_default``). 0 = no regularisation.
              Defaults kmad=5, J=3: see benchmarks/results/kmad_sweep.md (toy and faint presets).
    n_scales: number J of starlet detail scales that are soft-thresholded.
    links:    groups of parameters sharing one map, e.g. [("thermal.velocity", "thermal2.velocity")].
    cost:     "poisson" (C-statistic) or "chi2" (then ``sigma`` gives the per-bin errors; default
              sqrt(max(counts, 1))).
    background: None, a spectrum (E,) or a cube (E, Y, X) of expected background counts.
    mask:     boolean (Y, X) of pixels that count (True = use), or None for all.
    band:     (emin, emax) keV to select from the cube, or None for the models' band.
    binning:  spatial binning factor applied to the cube before the fit.
    warm_start: a previous FitResult (or any object with ``params`` and ``amplitudes`` dicts keyed like
              a FitResult's) to start from: its parameter and amplitude maps, at any integer binning of
              the cube's image (binned or resampled to this fit's; e.g. a quick binned fit refined at
              full resolution); a component's ``init`` still wins for its parameter.
    max_iter, tol, window: stop when the relative change of the cost (SUSHI's second phase: of the
              objective) over ``window`` iterations is below ``tol`` (sign-independent), or after
              max_iter iterations in all (default 300, the CLI's ``fit`` and the dock's default).
    device:   "auto" | "cpu" | "cuda" | "mps"; dtype "float32" | "float64".
    derivative: how the spectra are differentiated with respect to the parameters: "auto" (default:
              exact where the model computes its own derivatives, as the shipped grid emulators do,
              at about half the cost of differences there; one-sided differences otherwise), "fd"
              (one-sided differences with a step of 1e-3 of the box, one extra spectrum per parameter)
              or "ad" (exact: the model's own derivatives, else forward-mode autodiff, about 1.5-2x the
              cost of differences for the IAEs on the CPU). A fixed rule per model, so that the same
              request gives the same maps.
    snapshot_every: call the callback with map snapshots every N iterations.
    step_rule: "newton" (default: per-pixel Fisher-preconditioned, damped Gauss-Newton step with the
              threshold scaled by the per-pixel step, plus backtracking; then proximal Newton on the
              objective) or "fixed" (the reference scheme's steps: parameter step ``fixed_step``,
              default 0.1 / max(counts), in both phases).
    fixed_step: parameter step of the "fixed" rule (None = 0.1 / max(counts)).
    minimise_objective: SUSHI only: after the thresholding iterations (which land in the right basin
              fast but whose fixed point depends on the step), minimise the objective
              L + sum lambda |W (U - U0)| exactly from where they stopped (``objective.minimise``).
              ``max_iter`` bounds both phases together; the thresholding phase gets at most half of it,
              and at most ``sushi.THRESHOLD_MAX_ITER`` (15) iterations.
              False: the thresholding iteration alone (the result then depends on its step).
    n_starts: per-pixel fit only: number of starting points per pixel (best cost wins).
    coarse_init: SUSHI only: parameter maps without a given init start from a fit of the cube binned
              by this factor (1 = start from the models' defaults); see ``sushi.coarse_start``.
    start:    SUSHI only, with a coarse start: "scan" (default; a global start: the coarse fit starts, per
              binned pixel, from the best point of a grid over every free parameter's box,
              ``grid_start.grid_scan``, on a further binned cube where pixels are faint,
              ``sushi.scan_start``; initial values given in ``init`` are then not used, so the answer
              does not depend on them) or "default" (the coarse fit starts from the models' default
              values, or a component's ``init``). Measured on the morphology zoo (16 cases,
              benchmarks/results/zoo.md): index skill 1.82 -> 1.47 and share 1.85 -> 1.73 (medians;
              better in 13 and 16 of 16 cases), kT 0.82 either way (better in 11), velocity 0.84 -> 0.85.
    uncertainty: SUSHI only: how the sigma maps are estimated. "fisher" (default): per-pixel
              Fisher / Cramer-Rao bounds at the solution (ignore the regulariser; capped at the box's
              spread width / sqrt(12), where most faint pixels end up). "bootstrap": a parametric
              bootstrap of the joint fit (``bootstrap.py``): ``n_bootstrap`` Poisson replicas of the
              fitted model cube, each refitted warm from the solution with the same objective
              (same weights and anchor); sigma = sqrt(spread^2 + bias^2) per pixel (the regulariser's
              shrinkage counts as error), the bias maps are returned too (``FitResult.biases``).
              Costs about ``n_bootstrap`` x 40 iterations more than the fit.
    n_bootstrap: number of bootstrap replicas (>= 2; 8 by default).
    threads:  CPU intra-op threads of the fit (None: one; ``solver.threads`` says why), restored afterwards.
    regularise_shares: SUSHI only: write each pixel's amplitudes as a total and the components' shares
              of it, the shares being regularised maps like the parameters (kmad key "share"); see
              ``problem.share_form``. Default True; False: free per-pixel amplitudes (the published
              scheme), which on the morphology zoo scored worse than a constant map for the shares.
    anchor:   SUSHI only: what the objective penalises, per map. "start": the starlet planes of the
              map's departure from its starting maps, the coarse plane included (the maps stay near the
              coarse start where the data are weak); "coarse": the map's own detail planes, and the
              departure of its coarse plane from the start's (only the start's large scales are kept);
              "free": the map's own detail planes, the coarse plane unpenalised (the published scheme:
              the data set the large scales). "auto" (default): per map, from how the map is coupled to
              the pixel's other variables at the coarse problem (``anchor_rule``): "coarse" for a map
              that trades off against others (temperature, photon index, shares), whose coarse start is
              then the binned per-pixel fit shrunk to its level by empirical Bayes, "start" for an
              independent one (a line-of-sight velocity). One value for every map or a dict keyed like
              ``kmad`` ("<component>.<parameter>", "share"; missing keys: "auto"). The fit's
              provenance records the resolved choice. Without a coarse start (a warm start,
              ``coarse_init=1``, a small image) "auto" is measured at the fit's own start and a
              "coarse" map is held to that start's large scales (nothing is shrunk). The anchor is
              part of the objective's penalty: the thresholding phase does not use it, so with
              ``minimise_objective=False`` the choice only changes the start. Measured on the morphology zoo
              (benchmarks/results/zoo.md, docs/solver_measurements.md).
    """

    kmad: float | dict[str, float] = 5.0
    kmad_default: float = 5.0
    n_scales: int = 3
    links: list[tuple[str, ...]] = field(default_factory=list)
    cost: str = "poisson"
    sigma: np.ndarray | None = None
    background: np.ndarray | None = None
    mask: np.ndarray | None = None
    band: tuple[float, float] | None = None
    binning: int = 1
    warm_start: object | None = None
    max_iter: int = 300  # as the CLI's fit and the dock, so the same request gives the same maps everywhere
    tol: float = 1e-5
    window: int = 10
    device: str = "auto"
    dtype: str = "float32"
    derivative: str = "auto"
    seed: int = 0
    snapshot_every: int = 10
    step_rule: str = "newton"
    fixed_step: float | None = None
    minimise_objective: bool = True
    n_starts: int = 4
    coarse_init: int = 4
    start: str = "scan"
    uncertainty: str = "fisher"
    n_bootstrap: int = 8
    regularise_shares: bool = True
    anchor: str | dict[str, str] = "auto"
    threads: int | None = None


@dataclass
class Progress:
    """What the per-iteration callback receives."""

    iteration: int
    max_iter: int
    cost: float
    elapsed: float
    snapshot: dict[str, np.ndarray] | None = None  # layer key -> (Y, X) map, every snapshot_every
    objective: float | None = None  # SUSHI's second phase: cost + penalty (the minimised objective)
    start: int = 0  # per-pixel fit: which of its n_starts starting points is running (0-based)
    n_starts: int = 1  # per-pixel fit: restarts from other points; ``iteration`` counts over all of them


ProgressCallback = Callable[[Progress], None]
