"""``python -m pipeline.report``."""

from .cli import run

run()
