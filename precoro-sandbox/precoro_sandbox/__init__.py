"""Local emulator of the Precoro REST API."""
