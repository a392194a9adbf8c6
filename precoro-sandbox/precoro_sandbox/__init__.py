"""Local emulator of the Precoro REST API."""

__version__ = "0.1.0"
