"""Shared Precoro API client used by tap-precoro, target-precoro and the sandbox."""

__version__ = "0.1.0"
