"""Allow ``python -m napari_sushi``."""

import sys

from napari_sushi.cli import main

sys.exit(main())
