"""Singer target for Precoro."""
