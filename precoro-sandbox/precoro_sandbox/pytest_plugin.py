"""Pytest fixtures that start the sandbox in-process (filled by the sandbox package)."""
