"""Shared Precoro API client used by tap-precoro, target-precoro and the sandbox."""
