"""A small live plot of training and validation losses (log scale), drawn with QPainter (no extra deps)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from qtpy.QtCore import QPointF
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QWidget

SERIES_COLOURS = {"train": QColor(110, 170, 255), "val": QColor(255, 170, 60)}


class LossPlot(QWidget):
    """Loss per step for the series ``train`` and ``val`` (validation), log10 y axis."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series: dict[str, list[tuple[int, float]]] = {"train": [], "val": []}
        self.x_label = "step"
        self.setMinimumHeight(90)
        self.setToolTip("training (blue) and held-out validation (orange) loss per step, log scale")

    def clear(self, x_label: str = "step") -> None:
        self.series = {"train": [], "val": []}
        self.x_label = x_label
        self.update()

    def add(self, step: int, train: float | None = None, val: float | None = None) -> None:
        for name, v in (("train", train), ("val", val)):
            if v is not None and math.isfinite(v) and v > 0:
                self.series[name].append((int(step), float(v)))
        self.update()

    @property
    def n_points(self) -> int:
        return sum(len(s) for s in self.series.values())

    def paintEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        try:
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            w, h = self.width(), self.height()
            p.fillRect(0, 0, w, h, QColor(30, 33, 40))
            p.setPen(QColor(150, 150, 150))
            pts = [v for s in self.series.values() for v in s]
            if not pts:
                p.drawText(6, h // 2, "loss: waiting for the first step")
                return
            xs_all = np.array([a for a, _ in pts], float)
            ys_all = np.log10(np.array([b for _, b in pts], float))
            x0, x1 = float(xs_all.min()), float(xs_all.max())
            x1 = x1 if x1 > x0 else x0 + 1.0
            lo, hi = float(ys_all.min()), float(ys_all.max())
            hi = hi if hi > lo else lo + 1.0
            pad = 6
            for name, s in self.series.items():
                if not s:
                    continue
                xs = pad + (w - 2 * pad) * (np.array([a for a, _ in s], float) - x0) / (x1 - x0)
                ys = pad + (h - 2 * pad - 14) * (1.0 - (np.log10([b for _, b in s]) - lo) / (hi - lo))
                p.setPen(QPen(SERIES_COLOURS[name], 1.5))
                if len(s) == 1:
                    p.drawEllipse(QPointF(float(xs[0]), float(ys[0])), 2.5, 2.5)
                else:
                    p.drawPolyline(QPolygonF([QPointF(float(a), float(b)) for a, b in zip(xs, ys)]))
            p.setPen(QColor(200, 200, 200))
            last = {k: s[-1][1] for k, s in self.series.items() if s}
            text = f"{self.x_label} {int(x1) if len(pts) > 1 else int(x0)}  " + "  ".join(
                f"{k} {v:.3g}" for k, v in last.items()
            )
            p.drawText(pad, h - 3, text)
        finally:
            p.end()
