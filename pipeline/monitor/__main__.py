"""``python -m pipeline.monitor``."""

import sys

from .cli import main

sys.exit(main())
