"""napari-sushi: physical parameter maps from X-ray hyperspectral cubes with SUSHI."""

import os as _os
import sys as _sys

# Thread policy: OpenMP threads that finish a parallel region wait passively (sleep) instead of
# spinning. PyTorch's CPU build reads this once, when torch is first imported, so it is set here,
# before any of the package imports torch, unless the user chose a policy or torch is already loaded.
# Why: the solver runs thousands of small tensor operations per iteration; with spinning waiters on a
# machine whose cores are busy with other work, the toy's coarse start went from 2.4 s to 22 s at 2
# threads (benchmarks/results/speed.md has the figures with and without it).
if "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    from importlib.metadata import version as _version

    __version__ = _version("napari-sushi")
except Exception:  # pragma: no cover - not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
