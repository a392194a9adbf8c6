"""Run the tap with `python -m tap_precoro`."""

from tap_precoro.tap import TapPrecoro

TapPrecoro.cli()
