"""Plot a few model spectra (thermal at several kT and velocities, power law, absorbed) -> docs/images/model_spectra.png.

Usage: .venv/bin/python scripts/plot_model_spectra.py [-o docs/images/model_spectra.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from napari_sushi.core.physics import powerlaw, thermal, transmission
from napari_sushi.core.response import gaussian_response
from napari_sushi.core.simulate import PRESETS, unit_spectra


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "-o", "--output", default=str(Path(__file__).resolve().parents[1] / "docs/images/model_spectra.png")
    )
    out = Path(ap.parse_args().output)
    out.parent.mkdir(parents=True, exist_ok=True)

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    edges = np.geomspace(0.3, 10.0, 3001)
    e = np.sqrt(edges[1:] * edges[:-1])
    w = np.diff(edges)

    ax = axes[0, 0]
    for kt, col in [(0.5, "tab:blue"), (1.0, "tab:green"), (2.0, "tab:orange"), (4.0, "tab:red")]:
        ax.loglog(e, e * thermal(edges, kt)[0] / w, color=col, lw=0.8, label=f"kT = {kt:g} keV")
    ax.set(
        xlabel="energy (keV)", ylabel="E dN/dE (arbitrary)", title="Thermal plasma (continuum + lines)", ylim=(1e-4, 3)
    )
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    resp = gaussian_response(fwhm=0.005, fwhm_power=0.0, emin=6.3, emax=7.1, channel_width=0.0025, area=1.0)
    c = resp.channel_centers
    for v, col in [(-5000, "tab:blue"), (0, "k"), (5000, "tab:red")]:
        s = resp.fold(thermal(resp.energy_edges, 3.0, v))[0]
        ax.plot(c, s / s.max(), color=col, lw=0.9, label=f"v = {v:+d} km/s (5 eV FWHM)")
    acis = PRESETS["toy"]
    ca = 0.5 * (acis.channel_edges[1:] + acis.channel_edges[:-1])
    ax.set(xlabel="energy (keV)", ylabel="counts (peak = 1)", title="Fe K lines, kT = 3 keV: Doppler shift E(1 - v/c)")
    ax.legend(fontsize=7)

    ax = axes[1, 0]
    for g, col in [(2.0, "tab:purple"), (3.0, "tab:brown")]:
        ax.loglog(e, powerlaw(edges, g)[0] / w, color=col, lw=1.2, label=f"power law, index {g:g}")
        for nh, ls in [(0.5, "--"), (2.0, ":")]:
            ax.loglog(
                e,
                powerlaw(edges, g)[0] * transmission(edges, nh)[0] / w,
                color=col,
                ls=ls,
                lw=1.2,
                label=f"index {g:g}, N_H = {nh:g}e22 cm$^{{-2}}$ (wilm)",
            )
    ax.set(
        xlabel="energy (keV)", ylabel="dN/dE (photons/cm$^2$/s/keV)", title="Power law and absorption", ylim=(1e-3, 20)
    )
    ax.legend(fontsize=7)

    ax = axes[1, 1]
    for kt, col in [(1.0, "tab:green"), (2.0, "tab:orange"), (4.0, "tab:red")]:
        ax.semilogy(
            ca,
            unit_spectra(acis, "thermal", {"kT": kt, "velocity": 0.0})[0],
            color=col,
            lw=0.9,
            label=f"thermal kT = {kt:g} keV",
        )
    ax.semilogy(
        ca,
        unit_spectra(acis, "thermal", {"kT": 4.0, "velocity": 5000.0})[0],
        color="tab:red",
        ls="--",
        lw=0.9,
        label="thermal kT = 4 keV, v = +5000 km/s",
    )
    for g, col in [(2.0, "tab:purple"), (3.5, "tab:brown")]:
        ax.semilogy(
            ca, unit_spectra(acis, "powerlaw", {"index": g})[0], color=col, lw=0.9, label=f"power law index {g:g}"
        )
    ax.set(
        xlabel="channel energy (keV)",
        ylabel="fraction of counts per channel",
        title="Folded through Chandra ACIS-I, toy band (375 channels)",
    )
    ax.legend(fontsize=8)
    fig.suptitle("napari-sushi approximate emission models (scripts/plot_model_spectra.py)", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
