"""Singer tap for Precoro."""
