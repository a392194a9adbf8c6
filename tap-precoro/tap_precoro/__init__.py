"""Singer tap for Precoro."""

__version__ = "0.1.0"
