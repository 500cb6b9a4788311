"""Training spectral models from the project's simulator or a user's spectral library.

* ``emulator``: the grid is refined (cells per axis doubled) until a seeded set of random validation
  draws meets the accuracy target or stops improving (early stopping); the validation error per
  level is the loss curve. From a library, the library must be a parameter grid (as XSPEC table
  models are); its validation error is estimated by rebuilding from every other node.
* ``iae`` / ``reference``: seeded train/validation split, Adam, early stopping on the validation loss
  with the best weights restored, tqdm progress, the loss curve stored in ``meta.extra``.

Every trained model records its held-out accuracy in ``meta.extra["accuracy"]`` (relative L2 error
of its spectra on parameter draws the training never used: median, p99, n). A ``callback(info)``
reports progress to a GUI after each emulator level, network epoch and polish step, and cancels
training (:class:`TrainingCancelled`) by returning True; ``quick=True`` trains a small model in
seconds (for tests and previews).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from napari_sushi.core.physics.grid import doppler_factor
from napari_sushi.core.spectral.base import ModelMeta, ParameterInfo, SpectralModel
from napari_sushi.core.spectral.emulator import (
    GridEmulator,
    build_grid_emulator,
    emulator_from_grid,
    grid_nodes,
    log_spectra,
    pca_log_spectra,
)
from napari_sushi.core.spectral.iae import IAEModel, shifted_folded
from napari_sushi.core.spectral.library import LibraryError, SpectralLibrary
from napari_sushi.core.spectral.nets import rel_l2
from napari_sushi.core.spectral.reference import PCAMLPModel

if TYPE_CHECKING:  # simulate imports the spectral package: imported lazily at run time
    from napari_sushi.core.simulate import Preset

FAMILIES = ("emulator", "iae", "reference")
Generator = Callable[[np.ndarray], np.ndarray]
Callback = Callable[[dict], object]
ACCURACY_METRIC = "relative L2 spectral error on held-out draws"


class TrainingCancelled(RuntimeError):
    """Training was stopped because its callback returned True; no model is returned."""


class _Progress:
    """Calls ``callback(info)`` with the documented keys and raises :class:`TrainingCancelled` when it
    returns True. ``info``: stage ("emulator" | "network" | "polish"), step, total (int or None), train,
    val (floats or None), elapsed (s since training began), partial (True for a progress poll inside a
    step, e.g. while the grid is simulated, whose train/val are None), plus stage-specific keys."""

    def __init__(self, callback: Callback | None, t0: float | None = None) -> None:
        self.callback = callback
        self.t0 = time.perf_counter() if t0 is None else t0

    def __call__(
        self,
        stage: str,
        step: int,
        total: int | None,
        train: float | None = None,
        val: float | None = None,
        partial: bool = False,
        **extra,
    ) -> None:
        if self.callback is None:
            return
        info = {
            "stage": stage,
            "step": int(step),
            "total": None if total is None else int(total),
            "train": None if train is None else float(train),
            "val": None if val is None else float(val),
            "elapsed": time.perf_counter() - self.t0,
            "partial": bool(partial),
            **extra,
        }
        if self.callback(info) is True:
            raise TrainingCancelled(f"training cancelled by the callback during the {stage} stage (step {step}).")


def _progress(callback: Callback | _Progress | None) -> _Progress:
    return callback if isinstance(callback, _Progress) else _Progress(callback)


def accuracy_summary(errors: np.ndarray, **info) -> dict:
    """``meta.extra["accuracy"]``: median and 99th percentile of held-out relative L2 errors, their count."""
    e = np.asarray(errors, float)
    if e.size == 0:
        return {"median": None, "p99": None, "n": 0, "metric": ACCURACY_METRIC, **info}
    return {
        "median": float(np.median(e)),
        "p99": float(np.percentile(e, 99)),
        "n": int(e.size),
        "metric": ACCURACY_METRIC,
        **info,
    }


def default_scales(meta: ModelMeta) -> list[str]:
    """Log axis for positive parameters spanning a factor >= 5 (e.g. kT 0.5-5 keV), else linear."""
    return ["log" if p.low > 0 and p.high / p.low >= 5 else "linear" for p in meta.parameters]


def random_draws(meta: ModelMeta, n: int, seed: int, scales: list[str] | None = None) -> np.ndarray:
    """n parameter vectors uniform in the box (in each axis' grid coordinate), seeded."""
    scales = scales or default_scales(meta)
    rng = np.random.default_rng(seed)
    return np.stack([_box_values(p, s, rng.random(n)) for p, s in zip(meta.parameters, scales)], axis=1)


def _box_values(p: ParameterInfo, scale: str, u: np.ndarray) -> np.ndarray:
    """Values of parameter ``p`` at fractions ``u`` (0..1) of its box, uniform in the axis' grid coordinate."""
    return np.exp(np.log(p.low) + u * np.log(p.high / p.low)) if scale == "log" else p.low + u * (p.high - p.low)


def spectral_errors(model: SpectralModel, theta: np.ndarray, spectra: np.ndarray) -> np.ndarray:
    """Relative L2 error of the model's unit-sum spectra against reference spectra (n,)."""
    ref = spectra / spectra.sum(1, keepdims=True)
    with torch.no_grad():
        s = model.spectrum(torch.as_tensor(theta, dtype=torch.float64)).double().cpu().numpy()
    return np.linalg.norm(s - ref, axis=1) / np.linalg.norm(ref, axis=1)


def _chunked(generate: Generator, theta: np.ndarray, chunk: int = 512) -> np.ndarray:
    return np.concatenate([np.asarray(generate(theta[a : a + chunk]), float) for a in range(0, len(theta), chunk)])


# ----------------------------------------------------------------------------------- emulator
def train_emulator(
    meta: ModelMeta,
    generate: Generator,
    seed: int = 0,
    n_val: int = 500,
    target: tuple[float, float] = (2e-4, 1e-3),
    start_cells: list[int] | None = None,
    max_cells: int = 256,
    max_nodes: int = 40000,
    scales: list[str] | None = None,
    progress: bool = True,
    pca_tol: float = 1e-3,
    callback: Callback | _Progress | None = None,
) -> GridEmulator:
    """Refine a grid emulator until validation (median, p99) error < target or no further gain.

    ``pca_tol``: PCA truncation tolerance (worst grid node, relative L2); a larger value keeps fewer
    components, so ``spectrum`` and its gradient cost less (the two (n, C) x K products dominate).
    ``callback``: see :class:`_Progress` (stage "emulator", one step per level, ``val`` = the level's
    validation p99, plus ``val_median``, ``cells``); returning True raises :class:`TrainingCancelled`.
    The validation draws are random (seeded) points of the box, never grid nodes, so their errors are
    the held-out accuracy stored in ``meta.extra["accuracy"]``.
    """
    meta = _with_family(meta, "emulator")
    scales = scales or default_scales(meta)
    P = len(meta.parameters)
    cells = list(start_cells or [16] * P)
    if len(cells) != P or any(int(c) < 1 for c in cells):
        raise ValueError(f"start_cells needs one whole number >= 1 per parameter ({P}); got {cells}")
    if n_val < 1:
        raise ValueError(f"n_val must be >= 1 validation draws; got {n_val}")
    report = _progress(callback)
    total = _n_levels(cells, max_cells, max_nodes)
    report("emulator", 0, total, partial=True, cells=list(cells))
    theta_val = random_draws(meta, n_val, seed + 1000, scales)
    spec_val = _chunked(generate, theta_val)
    curve: list[dict] = []
    best: GridEmulator | None = None
    best_err = None
    t0 = time.perf_counter()
    bar = tqdm(desc=f"emulator {meta.component}", unit="level", disable=not progress)
    try:
        while True:
            level = len(curve) + 1
            poll = lambda done, of, lv=level, cl=list(cells): report(
                "emulator", lv, total, partial=True, cells=cl, simulated=[int(done), int(of)]
            )
            model = build_grid_emulator(meta, generate, cells, scales, rel_tol=pca_tol, progress=poll)
            err = spectral_errors(model, theta_val, spec_val)
            med, p99 = float(np.median(err)), float(np.percentile(err, 99))
            curve.append(
                {"cells": list(cells), "n_components": int(model.basis.shape[0]), "val_median": med, "val_p99": p99}
            )
            bar.update(1)
            bar.set_postfix(cells="x".join(map(str, cells)), median=f"{med:.2e}", p99=f"{p99:.2e}")
            improved = best is None or p99 < 0.8 * curve[-2]["val_p99"]
            if best is None or p99 <= min(c["val_p99"] for c in curve):
                best, best_err = model, err
            report("emulator", level, total, val=p99, val_median=med, cells=list(cells))
            if (med < target[0] and p99 < target[1]) or not improved:
                break
            nxt = [min(2 * c, max_cells) for c in cells]
            if nxt == cells or int(np.prod([c + 3 for c in nxt])) > max_nodes:
                break
            cells = nxt
    finally:
        bar.close()
    assert best is not None and best_err is not None  # the first level always becomes the best
    best.meta.extra.update(
        {
            "training": {
                "source": meta.extra.get("source", "generator"),
                "seed": seed,
                "n_val": n_val,
                "scales": scales,
                "pca_tol": pca_tol,
                "seconds": round(time.perf_counter() - t0, 2),
                "early_stopping": "stop refining when the validation target is met or p99 gains < 20 %",
            },
            "loss_curve": curve,
            "accuracy": accuracy_summary(best_err, held_out="seeded random draws in the box (not grid nodes)"),
        }
    )
    return best


def _n_levels(cells: list[int], max_cells: int, max_nodes: int) -> int:
    """How many refinement levels :func:`train_emulator` may build at most (the callback's ``total``)."""
    n, c = 1, list(cells)
    while True:
        nxt = [min(2 * x, max_cells) for x in c]
        if nxt == c or int(np.prod([x + 3 for x in nxt])) > max_nodes:
            return n
        c, n = nxt, n + 1


def emulator_from_library(lib: SpectralLibrary, scales: list[str] | None = None, validate: bool = True) -> GridEmulator:
    """Grid emulator from a library on a full parameter grid (uniform in linear or log per axis)."""
    axes = lib.grid_axes()
    if axes is None:
        raise LibraryError(
            "the emulator family needs a library whose parameters form a full grid (every combination of "
            "the values of each parameter, like an XSPEC table model); this library is scattered. Train "
            "--family iae or --family reference on it instead."
        )
    t0 = time.perf_counter()
    meta = lib.meta("emulator")
    if scales is None:
        scales = []
        for a in axes:
            if len(a) < 2:
                raise LibraryError("every grid parameter needs at least 2 values; drop constant parameters")
            d = np.diff(a)
            if np.allclose(d, d[0], rtol=1e-5):
                scales.append("linear")
            elif a[0] > 0 and np.allclose(np.diff(np.log(a)), np.log(a[1] / a[0]), rtol=1e-5):
                scales.append("log")
            else:
                raise LibraryError("library grid axes must be uniform in the parameter or in its logarithm")
    spectra = lib.grid_spectra()
    # The box edges are the first/last nodes: add one node beyond each end by linear extrapolation of
    # the log-spectra (Catmull-Rom needs it), then build as usual.
    L = log_spectra(spectra).reshape(*[len(a) for a in axes], -1)
    full_axes = []
    for j, (a, s) in enumerate(zip(axes, scales)):
        lo = np.take(L, [0], axis=j) * 2 - np.take(L, [1], axis=j)
        hi = np.take(L, [-1], axis=j) * 2 - np.take(L, [-2], axis=j)
        L = np.concatenate([lo, L, hi], axis=j)
        t = np.log(a) if s == "log" else a
        h = t[1] - t[0]
        tt = np.concatenate([[t[0] - h], t, [t[-1] + h]])
        full_axes.append(np.exp(tt) if s == "log" else tt)
    flat = L.reshape(-1, L.shape[-1])
    spectra_full = np.exp(flat - flat.max(1, keepdims=True))
    model = emulator_from_grid(meta, full_axes, spectra_full, scales)
    # validation: rebuild from every other node and check the skipped ones (an upper bound)
    val, acc = None, accuracy_summary(np.zeros(0), held_out="none: needs >= 5 grid values per parameter")
    if validate and all(len(a) >= 5 for a in axes):
        sub = tuple(slice(0, None, 2) for _ in axes)
        sub_lib = spectra.reshape(*[len(a) for a in axes], -1)[sub]
        coarse = SpectralLibrary(
            lib.energy_edges,
            np.stack(np.meshgrid(*[a[::2] for a in axes], indexing="ij"), -1).reshape(-1, len(axes)),
            sub_lib.reshape(-1, sub_lib.shape[-1]),
            lib.names,
            lib.units,
            np.array([a[::2][0] for a in axes]),
            np.array([a[::2][-1] for a in axes]),
        )
        cm = emulator_from_library(coarse, scales, validate=False)
        mask = np.zeros(len(lib.params), bool)
        for j, a in enumerate(axes):
            mask |= np.isin(lib.params[:, j], a[1::2])
        mask &= np.all((lib.params >= cm.bounds[:, 0]) & (lib.params <= cm.bounds[:, 1]), axis=1)
        if mask.any():
            err = spectral_errors(cm, lib.params[mask], lib.spectra[mask])
            val = {
                "method": "every-other-node rebuild (upper bound)",
                "val_median": float(np.median(err)),
                "val_p99": float(np.percentile(err, 99)),
            }
            acc = accuracy_summary(
                err,
                held_out="library nodes left out of an every-other-node rebuild "
                "(an upper bound on the full model's error)",
            )
    model.meta.extra.update(
        {
            "training": {"source": "library", "scales": scales, "seconds": round(time.perf_counter() - t0, 2)},
            "loss_curve": [val] if val else [],
            "accuracy": acc,
        }
    )
    return model


# ----------------------------------------------------------------------------------- networks
def _with_family(meta: ModelMeta, family: str) -> ModelMeta:
    return ModelMeta(
        component=meta.component,
        family=family,
        parameters=list(meta.parameters),
        energy_edges=np.asarray(meta.energy_edges, float).copy(),
        channels=None if meta.channels is None else np.asarray(meta.channels).copy(),
        response_id=meta.response_id,
        band=meta.band,
        description=meta.description,
        extra=dict(meta.extra),
    )


def train_network(
    family: str,
    meta: ModelMeta,
    theta: np.ndarray,
    spectra: np.ndarray,
    seed: int = 0,
    val_frac: float = 0.1,
    max_epochs: int = 2000,
    patience: int = 60,
    lr: float = 2e-3,
    batch_size: int = 256,
    time_limit: float | None = None,
    progress: bool = True,
    scales: list[str] | None = None,
    n_components: int | None = None,
    doppler: dict | None = None,
    schedule: str = "plateau",
    polish_seconds: float = 0.0,
    callback: Callback | _Progress | None = None,
    **arch,
) -> SpectralModel:
    """Train an ``iae`` or ``reference`` model on (theta, spectra) with a seeded split and early stopping.

    ``callback``: see :class:`_Progress` (stage "network" once per epoch with its mean training loss and
    validation loss, plus ``lr``; then "polish" once per L-BFGS step); returning True raises
    :class:`TrainingCancelled`. ``meta.extra["accuracy"]`` is measured on the validation split (rows
    never trained on; they choose the stopping epoch).

    ``doppler`` (IAE only; see :func:`doppler_setup`): train the exact-Doppler IAE, whose decoder
    learns rest-frame spectra (``doppler["rest"]`` (n, R): the rest-frame masses of each training
    row, a direct target besides the observed spectra). ``schedule``: "plateau" (halve the learning
    rate when the validation loss stalls) or "cosine" (cosine decay over ``time_limit``, or over
    ``max_epochs`` without one). ``polish_seconds`` > 0: then full-batch L-BFGS in float64 on the
    same loss for that long (see :func:`_lbfgs_polish`).
    """
    if family not in ("iae", "reference"):
        raise ValueError(f"train_network trains 'iae' or 'reference'; got {family!r}")
    meta = _with_family(meta, family)
    scales = scales or default_scales(meta)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n = len(theta)
    perm = rng.permutation(n)
    n_val = max(1, int(round(val_frac * n)))
    iv, it = perm[:n_val], perm[n_val:]
    if doppler is not None and family != "iae":
        raise ValueError("the Doppler mode is an IAE option")
    if schedule not in ("plateau", "cosine"):
        raise ValueError(f"schedule must be 'plateau' or 'cosine'; got {schedule!r}")
    L = log_spectra(spectra)
    L_dec = L if doppler is None else log_spectra(doppler["rest"])  # what the decoder's PCA basis spans
    if doppler is None:
        mean, U, S, Vt, K = pca_log_spectra(L_dec[it], n_components, rel_tol=2e-4)
    else:  # rank chosen on the folded, shifted spectra (sub-bin line wings need no exact log-PCA)
        mean, U, S, Vt, _ = pca_log_spectra(L_dec[it], L_dec.shape[1])
        K = n_components or doppler_rank(mean, U, S, Vt, doppler, theta[it][:, doppler["velocity_index"]])
    coefs = U * S
    if family == "reference":
        model: PCAMLPModel | IAEModel = PCAMLPModel(meta, scales, K, **arch)
    elif doppler is None:
        model = IAEModel(meta, scales, K, **arch)
    else:
        vi = doppler["velocity_index"]
        model = IAEModel(
            meta,
            scales,
            K,
            doppler={
                "velocity_index": vi,
                "n_rest": len(doppler["rest_edges"]) - 1,
                "n_obs": len(doppler["obs_edges"]) - 1,
            },
            **arch,
        )
        with torch.no_grad():
            model.set_grids(doppler["rest_edges"], doppler["obs_edges"])
            model.fold.copy_(torch.as_tensor(doppler["fold"], dtype=torch.float32))
    with torch.no_grad():
        model.basis.copy_(torch.as_tensor(Vt[:K], dtype=torch.float32))
        model.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        model.coef_scale.copy_(torch.as_tensor(coefs[:, :K].std(0) + 1e-6, dtype=torch.float32))
        if family == "iae":
            assert isinstance(model, IAEModel)
            model.in_mean.copy_(torch.as_tensor(L[it].mean(0), dtype=torch.float32))
            model.in_scale.copy_(torch.as_tensor(L[it].std(0) + 1e-3, dtype=torch.float32))
    Tt = torch.as_tensor(theta, dtype=torch.float32)
    Lt = torch.as_tensor(L, dtype=torch.float32)
    St = torch.softmax(Lt, dim=1)
    Rt = None if doppler is None else torch.softmax(torch.as_tensor(L_dec, dtype=torch.float32), dim=1)
    if family == "iae":
        assert isinstance(model, IAEModel)
        corners = IAEModel.corner_units(len(meta.parameters))
        # anchors: the training spectra nearest to each corner of the box (in unit coordinates)
        U = model.scaler.to_unit(Tt)
        idx = torch.cdist(corners, U[torch.as_tensor(it)]).argmin(1)
        with torch.no_grad():
            model.anchors.copy_(
                Lt[torch.as_tensor(it)][idx] - torch.logsumexp(Lt[torch.as_tensor(it)][idx], 1, keepdim=True)
            )

    # swapped for float64 copies by the L-BFGS polish
    data: dict[str, torch.Tensor | None] = {"T": Tt, "S": St, "L": Lt, "R": Rt}

    def loss_fn(ix: torch.Tensor) -> torch.Tensor:
        Tt, St, Lt, Rt = data["T"], data["S"], data["L"], data["R"]
        assert Tt is not None and St is not None and Lt is not None  # only "R" (rest-frame targets) may be None
        th, s, lg = Tt[ix], St[ix], Lt[ix]
        if family == "reference":
            return rel_l2(model.spectrum(th), s).mean()
        assert isinstance(model, IAEModel)  # family "iae"
        u = model.scaler.to_unit(th)
        if doppler is not None:
            assert Rt is not None  # the rest-frame targets of the Doppler mode
            return doppler_loss(model, th, u, s, lg, Rt[ix])
        Za = model.encode_log(model.anchors)
        lam_x = model.barycenter_weights(model.encode_log(lg), Za)
        lam_t = model.lambda_from_theta(th)
        rec_x = model.decode(lam_x, Za)
        rec_t = model.decode(lam_t, Za)
        u_hat = model.lambda_to_theta(lam_x)
        return (
            rel_l2(rec_x, s).mean()
            + rel_l2(rec_t, s).mean()
            + 0.1 * ((lam_t - lam_x) ** 2).sum(1).mean()
            + 0.01 * ((u_hat - u) ** 2).sum(1).mean()
        )

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=max(5, patience // 4))
    if schedule == "cosine":  # the epoch loop below sets the rate from the elapsed fraction
        patience = max_epochs + 1  # no early stop: the schedule decides the end, best weights kept
    it_t, iv_t = torch.as_tensor(it), torch.as_tensor(iv)
    best_state, best_val, bad, curve = None, float("inf"), 0, []
    t0 = time.perf_counter()
    report = _progress(callback)
    bar = tqdm(range(max_epochs), desc=f"{family} {meta.component}", unit="epoch", disable=not progress)
    stop = "max_epochs"
    try:
        for epoch in bar:
            model.train()
            if schedule == "cosine":
                done = (time.perf_counter() - t0) / time_limit if time_limit else epoch / max_epochs
                for gr in opt.param_groups:
                    gr["lr"] = lr * (0.01 + 0.99 * 0.5 * (1.0 + np.cos(np.pi * min(done, 1.0))))
            order = it_t[torch.randperm(len(it_t))]
            tot = 0.0
            for a in range(0, len(order), batch_size):
                ix = order[a : a + batch_size]
                opt.zero_grad()
                loss = loss_fn(ix)
                loss.backward()
                opt.step()
                tot += float(loss.detach()) * len(ix)
            model.eval()
            if family == "iae":
                assert isinstance(model, IAEModel)
                model.refresh_anchor_codes()
            with torch.no_grad():
                model.train(family == "iae")  # IAE validation uses the same joint loss
                val = float(loss_fn(iv_t))
                model.eval()
            if schedule == "plateau":
                sched.step(val)
            curve.append({"epoch": epoch + 1, "train": tot / len(it_t), "val": val})
            bar.set_postfix(train=f"{tot / len(it_t):.2e}", val=f"{val:.2e}")
            report(
                "network", epoch + 1, max_epochs, train=tot / len(it_t), val=val, lr=float(opt.param_groups[0]["lr"])
            )
            if val < best_val * (1 - 1e-4):
                best_val, bad = val, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
                if bad >= patience:
                    stop = "early_stopping"
                    break
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                stop = "time_limit"
                break
    finally:
        bar.close()
    if best_state is None:  # no epoch ran, or no validation loss was finite
        raise ValueError(
            f"training the {family} network gave no finite validation loss in {len(curve)} epoch(s) "
            "(max_epochs must be >= 1; check the training spectra for NaN or infinite values)"
        )
    model.load_state_dict(best_state)
    model.eval()
    if family == "iae":
        assert isinstance(model, IAEModel)
        model.refresh_anchor_codes()
    polish = None
    if polish_seconds > 0:
        polish = _lbfgs_polish(model, loss_fn, data, it_t, iv_t, polish_seconds, family == "iae", report)
    # keep the curve compact in the file: at most ~200 points, rounded
    step = max(1, len(curve) // 200)
    compact = [{k: (round(v, 7) if isinstance(v, float) else v) for k, v in c.items()} for c in curve[::step]]
    model.meta.extra.update(
        {
            "training": {
                "source": meta.extra.get("source", "data"),
                "seed": seed,
                "n_train": int(len(it)),
                "n_val": int(len(iv)),
                "epochs": len(curve),
                "stop": stop,
                "best_val": best_val,
                "seconds": round(time.perf_counter() - t0, 1),
                "lr": lr,
                "batch_size": batch_size,
                "scales": scales,
                "schedule": schedule,
                "polish": polish,
                **(
                    {}
                    if doppler is None
                    else {"doppler": {"rest_bins": len(doppler["rest_edges"]) - 1, "grid": doppler.get("grid", {})}}
                ),
            },
            "loss_curve": compact,
            "accuracy": accuracy_summary(
                spectral_errors(model, theta[iv], spectra[iv]),
                held_out="the validation split (never trained on; it picks the stopping epoch)",
            ),
        }
    )
    return model


def hellinger_rel(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """2 x Hellinger distance of unit-sum spectra (n,): ~ the relative error per channel weighted by the
    channel's share, as in the Poisson fit (2 KL ~ this squared), so faint channels count too."""
    return 2.0 * torch.linalg.vector_norm(pred.clamp_min(0).sqrt() - target.clamp_min(0).sqrt(), dim=1)


def doppler_loss(
    model: IAEModel, th: torch.Tensor, u: torch.Tensor, s: torch.Tensor, lg: torch.Tensor, rest: torch.Tensor
) -> torch.Tensor:
    """Joint loss of the exact-Doppler IAE on a batch: observed spectra decoded from the encoded
    spectra (auto-encoder) and from theta (physical head; relative L2 and Hellinger, the latter
    weighting channels as the Poisson fit does), the rest-frame spectra from theta, the
    agreement of both barycentres, the encoder's velocity estimate and the lambda -> theta read-out."""
    assert model.doppler is not None  # the Doppler mode
    vi = model.doppler["velocity_index"]
    Za = model.codes_of_anchors()
    code = model.encode_log(lg)
    lam_x = model.barycenter_weights(code, Za)
    lam_t = model.lambda_from_theta(th)
    rest_t, u_t = model.decode_coefficients(lam_t, Za)
    rec_t = model.fold_rest(rest_t, u_t)
    rec_x = model.decode(lam_x, Za)
    shape_u = model.lambda_to_theta(model._shape_marginal(lam_x))
    return (
        rel_l2(rec_x, s).mean()
        + rel_l2(rec_t, s).mean()
        + hellinger_rel(rec_t, s).mean()
        + rel_l2(torch.softmax(rest_t, 1), rest).mean()
        + 0.1 * ((lam_t - lam_x) ** 2).sum(1).mean()
        + 0.1 * ((code[:, -1] - u[:, vi]) ** 2).mean()
        + 0.01 * ((shape_u - u[:, model.shape_index]) ** 2).sum(1).mean()
    )


def doppler_rank(
    mean: np.ndarray,
    U: np.ndarray,
    S: np.ndarray,
    Vt: np.ndarray,
    doppler: dict,
    velocity: np.ndarray,
    tol: float = 1e-4,
    n_check: int = 500,
) -> int:
    """Smallest multiple of 4 principal components of the rest-frame log-spectra whose truncation
    error, measured on the shifted and folded (observed) spectra of up to ``n_check`` training rows,
    is below ``tol`` (worst row, relative L2)."""
    n = min(n_check, U.shape[0])
    r = torch.as_tensor(doppler["rest_edges"], dtype=torch.float64)
    e = torch.as_tensor(doppler["obs_edges"], dtype=torch.float64)
    F = torch.as_tensor(doppler["fold"], dtype=torch.float64)
    s = torch.as_tensor(doppler_factor(velocity[:n]))

    def observed(Lr: np.ndarray) -> torch.Tensor:
        return shifted_folded(torch.softmax(torch.as_tensor(Lr), 1), r, e, s, F)

    ref = observed(mean + (U[:n] * S) @ Vt)
    for k in list(range(4, Vt.shape[0], 4)) + [Vt.shape[0]]:
        o = observed(mean + (U[:n, :k] * S[:k]) @ Vt[:k])
        if float((torch.linalg.vector_norm(o - ref, dim=1) / torch.linalg.vector_norm(ref, dim=1)).max()) < tol:
            return k
    return int(Vt.shape[0])


def adaptive_rest_edges(coarse: np.ndarray, fine_masses: np.ndarray, M: int, tol: float) -> np.ndarray:
    """Rest-frame grid: the ``coarse`` bins, each bisected (down to 1/M, M a power of 2) where the masses
    ``fine_masses`` (S, N*M) on the uniform M-fold subdivision depart from uniform by more than ``tol``
    (L1, as a fraction of the spectrum's total) for any of the S sample spectra (narrow lines)."""
    S, N = fine_masses.shape[0], len(coarse) - 1
    fm = fine_masses.reshape(S, N, M) / fine_masses.sum(1)[:, None, None]
    out = [float(coarse[0])]

    def split(j: int, a: int, b: int) -> None:
        blk = fm[:, j, a:b]
        if b - a > 1 and np.abs(blk - blk.mean(1, keepdims=True)).sum(1).max() > tol:
            split(j, a, (a + b) // 2)
            split(j, (a + b) // 2, b)
        else:
            out.append(float(coarse[j] + (coarse[j + 1] - coarse[j]) * b / M))

    for j in range(N):
        split(j, 0, M)
    return np.asarray(out)


def doppler_setup(
    preset: str | Preset, component: str, subdivide: int = 64, tol: float = 1e-5, n_shape_samples: int = 12
) -> dict | None:
    """What the exact-Doppler IAE needs from a simulator preset, or None for a component without a
    velocity: the observed input grid ``obs_edges`` (the response's), ``fold`` = transmission (fixed
    N_H, observer frame) x ARF x RMF (N, C), an adaptive rest-frame grid ``rest_edges`` covering the
    velocity box, and ``rest_flux(theta) -> (n, R)`` (rest-frame photon flux per rest bin, velocity 0).
    The rest grid is the input grid's bin width, refined where sample rest spectra (shape parameters
    spread over the box, velocity 0) have sub-bin structure, see :func:`adaptive_rest_edges`."""
    from napari_sushi.core.physics.models import Absorption
    from napari_sushi.core.simulate import component_model, get_preset

    pr = get_preset(preset)
    spec = pr.components[component]
    names = spec.param_names
    if "velocity" not in names:
        return None
    vi = names.index("velocity")
    resp = pr.restricted_response
    E = np.asarray(resp.energy_edges, float)
    mat = resp.matrix.toarray() if hasattr(resp.matrix, "toarray") else np.asarray(resp.matrix)
    fold = resp.arf[:, None] * mat
    fixed = dict(spec.fixed)
    nH = fixed.pop("nH", None)
    if nH is not None:
        fold = fold * Absorption(pr.abundance_table)(E, {"nH": np.atleast_1d(float(nH))})[0][:, None]
    vp = spec.parameters[vi]
    s_lo, s_hi = float(doppler_factor(vp.high)), float(doppler_factor(vp.low))
    h = float(np.diff(E).mean())
    lo, hi = E[0] / s_hi - h, E[-1] / s_lo + h
    n = int(np.ceil((hi - lo) / h))
    coarse = lo + h * np.arange(n + 1)
    model = component_model(component, spec.physics)

    def rest_flux_on(edges: np.ndarray, theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(np.asarray(theta, float))
        p = {k: np.broadcast_to(np.asarray(v, float), (len(theta),)) for k, v in fixed.items()}
        p.update({nm: theta[:, j] for j, nm in enumerate(names)})
        p["velocity"] = np.zeros(len(theta))
        return np.asarray(model(edges, p), float)

    meta, _ = simulator_source(preset, component)
    t = np.linspace(0, 1, n_shape_samples)  # shape samples evenly over the box; rest_flux_on sets velocity 0
    samples = np.stack(
        [
            np.zeros_like(t) if j == vi else _box_values(p, sc, t)
            for j, (p, sc) in enumerate(zip(meta.parameters, default_scales(meta)))
        ],
        axis=1,
    )
    fine = lo + (h / subdivide) * np.arange(n * subdivide + 1)
    rest_edges = adaptive_rest_edges(coarse, rest_flux_on(fine, samples), subdivide, tol)
    return {
        "velocity_index": vi,
        "obs_edges": E,
        "fold": fold,
        "rest_edges": rest_edges,
        "rest_flux": lambda theta: rest_flux_on(rest_edges, theta),
        "grid": {"coarse_keV": h, "subdivide": subdivide, "tol": tol},
    }


def _lbfgs_polish(
    model: SpectralModel,
    loss_fn,
    data: dict,
    it_t: torch.Tensor,
    iv_t: torch.Tensor,
    seconds: float,
    iae: bool,
    report: _Progress | None = None,
) -> dict:
    """Refine a trained network by full-batch L-BFGS (strong Wolfe line search) in float64 on the same
    joint loss over the training rows, for ``seconds``; Adam's stochastic steps stall at the ~1e-4
    level, and a fit's velocity needs the spectra finer than that. The result is kept only if the
    validation loss improves. The model comes back in float32 (eval mode)."""
    t0 = time.perf_counter()
    saved = {k: v for k, v in data.items()}
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.double().train(iae)
    for k, v in saved.items():
        data[k] = None if v is None else v.double()
    with torch.no_grad():
        val0 = float(loss_fn(iv_t))
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=4, history_size=50, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(it_t)
        loss.backward()
        return loss

    steps = 0
    report = report or _progress(None)
    try:
        while time.perf_counter() - t0 < seconds:
            loss = opt.step(closure)
            steps += 1
            report("polish", steps, None, train=float(loss.detach()), polish_seconds=float(seconds))
    except TrainingCancelled:
        model.float().eval()
        data.update(saved)
        raise
    with torch.no_grad():
        val1 = float(loss_fn(iv_t))
    kept = bool(np.isfinite(val1) and val1 < val0)
    model.float().eval()
    if not kept:
        model.load_state_dict(before)
    if iae:
        assert isinstance(model, IAEModel)
        model.refresh_anchor_codes()
    data.update(saved)
    return {
        "seconds": round(time.perf_counter() - t0, 1),
        "lbfgs_steps": steps,
        "val_before": val0,
        "val_after": val1,
        "kept": kept,
    }


def network_cells(P: int) -> list[int]:
    """Grid cells per axis of the networks' simulated training set for P parameters (see
    :func:`network_training_set`): 48 for one parameter, 16 x 16 for two, 6 per axis beyond."""
    return [48] if P == 1 else [16] * P if P == 2 else [6] * P


def network_training_set(
    meta: ModelMeta,
    generate: Generator,
    n_random: int,
    seed: int,
    cells: list[int] | None = None,
    scales: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Training data for the networks: the emulator-style grid inside the box plus seeded random draws."""
    scales = scales or default_scales(meta)
    parts = []
    if cells:
        axes = [grid_nodes(p.low, p.high, c, s)[1:-1] for p, c, s in zip(meta.parameters, cells, scales)]
        parts.append(np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes)))
    if n_random:
        parts.append(random_draws(meta, n_random, seed, scales))
    theta = np.concatenate(parts)
    return theta, _chunked(generate, theta)


# ----------------------------------------------------------------------------------- entry point
def simulator_source(preset: str | Preset, component: str) -> tuple[ModelMeta, Generator]:
    """Model metadata (parameters, channel grid, response, band, fixed parameters) and a spectrum
    generator ``theta (n, P) -> (n, C)`` of a component of a simulator preset (a name, or a
    ``simulate.Preset`` of one's own: another response, band, absorption or parameter box)."""
    from napari_sushi.core.simulate import get_preset

    pr = get_preset(preset)
    preset = pr.name
    if component not in pr.components:
        raise ValueError(f"preset {preset!r} has components {sorted(pr.components)}; got {component!r}")
    spec = pr.components[component]
    names = spec.param_names
    fixed = ", ".join(f"{k}={v:g}" for k, v in spec.fixed.items())
    extra: dict[str, Any] = {
        "preset": preset,
        "fixed": {k: float(v) for k, v in spec.fixed.items()},
        "physics": spec.physics,
    }
    if pr.response_files is not None:  # a response read from files: where they were, for provenance
        extra["response"] = pr.response_files
    if pr.group > 1:
        extra["group"] = int(pr.group)
    meta = ModelMeta(
        component=component,
        family="",
        parameters=list(spec.parameters),
        energy_edges=np.asarray(pr.channel_edges, float),
        channels=np.asarray(pr.channels, np.int64),
        response_id=pr.response_id,
        band=(float(pr.band[0]), float(pr.band[1])),
        description=f"{spec.description}; preset {preset}" + (f"; fixed {fixed}" if fixed else ""),
        extra=extra,
    )

    def generate(theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(np.asarray(theta, float))
        return pr.folded_spectra(component, {n: theta[:, j] for j, n in enumerate(names)})

    return meta, generate


def train_model(
    family: str,
    preset: str | Preset | None = None,
    component: str | None = None,
    library: str | None = None,
    seed: int = 0,
    val_frac: float = 0.1,
    max_epochs: int | None = None,
    patience: int | None = None,
    time_limit: float | None = None,
    n_random: int | None = None,
    progress: bool = True,
    pca_tol: float = 1e-3,
    doppler: bool = True,
    schedule: str = "plateau",
    polish_seconds: float = 0.0,
    callback: Callback | None = None,
    quick: bool = False,
    start_cells: list[int] | None = None,
    max_cells: int | None = None,
    n_val: int | None = None,
    target: tuple[float, float] | None = None,
    **arch,
) -> SpectralModel:
    """Train a model of ``family`` from a simulator preset (a name or a ``simulate.Preset``, e.g. from
    ``simulate.customise_preset`` or ``simulate.response_preset``) + component, or from a library file.

    ``pca_tol`` is the emulator's PCA truncation tolerance (see :func:`train_emulator`). ``doppler``:
    an IAE of a simulator component with a velocity applies the Doppler shift exactly (see
    :mod:`napari_sushi.core.spectral.iae`); False trains the plain IAE. ``schedule`` and
    ``polish_seconds``: see :func:`train_network` (``time_limit`` covers the Adam phase only).

    ``callback(info: dict)``: progress after each emulator level, network epoch or polish step (keys
    stage, step, total, train, val, elapsed, partial; see :class:`_Progress`); returning True stops
    training and raises :class:`TrainingCancelled`. ``quick``: a small model in seconds, for tests and
    previews (emulator: 8 cells per axis refined up to 32, 200 validation draws, target 1e-3 / 5e-3;
    networks: 300 random draws, at most 60 epochs, patience 15); explicit arguments win over it.
    Emulator options ``start_cells``, ``max_cells``, ``n_val``, ``target``: see :func:`train_emulator`.
    The held-out accuracy lands in ``model.meta.extra["accuracy"]``; for networks trained from the
    simulator it is measured on ``n_val`` fresh draws (default 500, quick 100)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose one of {FAMILIES}")
    if (preset is None) == (library is None):
        raise ValueError("give either a simulator preset (with a component) or a spectral library file")
    report = _progress(callback)
    max_epochs = max_epochs if max_epochs is not None else (60 if quick else 2000)
    patience = patience if patience is not None else (15 if quick else 60)
    n_random = n_random if n_random is not None else (300 if quick else 3000)
    if library is not None:
        from napari_sushi.core.spectral.library import read_library

        lib = read_library(library)
        if family == "emulator":
            return emulator_from_library(lib)
        meta = lib.meta(family)
        meta.extra["source"] = f"library {library}"
        return train_network(
            family,
            meta,
            lib.params,
            lib.spectra,
            seed=seed,
            val_frac=val_frac,
            max_epochs=max_epochs,
            patience=patience,
            time_limit=time_limit,
            progress=progress,
            schedule=schedule,
            polish_seconds=polish_seconds,
            callback=report,
            **arch,
        )
    assert preset is not None  # exactly one of preset and library
    if component is None:
        raise ValueError("give the component to train from the simulator preset")
    meta, generate = simulator_source(preset, component)
    meta.extra["source"] = f"simulator preset {meta.extra['preset']}"
    if family == "emulator":
        P = len(meta.parameters)
        opts: dict[str, Any] = {
            "start_cells": start_cells or ([8] * P if quick else None),
            "max_cells": max_cells or (32 if quick else 256),
            "n_val": n_val or (200 if quick else 500),
            "target": tuple(target) if target is not None else ((1e-3, 5e-3) if quick else (2e-4, 1e-3)),
        }
        emu = train_emulator(meta, generate, seed=seed, progress=progress, pca_tol=pca_tol, callback=report, **opts)
        if quick:
            emu.meta.extra["training"]["quick"] = True
        return emu
    t0 = time.perf_counter()
    report("network", 0, max_epochs, partial=True, preparing="simulating the training set")
    theta, spectra = network_training_set(meta, generate, n_random, seed, cells=network_cells(len(meta.parameters)))
    dop = doppler_setup(preset, component) if family == "iae" and doppler else None
    if dop is not None:
        dop["rest"] = _chunked(dop["rest_flux"], theta)
    prep = time.perf_counter() - t0
    model = train_network(
        family,
        meta,
        theta,
        spectra,
        seed=seed,
        val_frac=val_frac,
        max_epochs=max_epochs,
        patience=patience,
        time_limit=time_limit,
        progress=progress,
        doppler=dop,
        schedule=schedule,
        polish_seconds=polish_seconds,
        callback=report,
        **arch,
    )
    model.meta.extra["training"]["data_seconds"] = round(prep, 1)
    if quick:
        model.meta.extra["training"]["quick"] = True
    n_acc = n_val or (100 if quick else 500)
    theta_acc = random_draws(meta, n_acc, seed + 2000)  # fresh draws: neither training nor validation rows
    model.meta.extra["accuracy"] = accuracy_summary(
        spectral_errors(model, theta_acc, _chunked(generate, theta_acc)),
        held_out="fresh seeded simulator draws (not in the training set)",
    )
    return model
