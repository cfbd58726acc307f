"""Experiments: reproducible studies built from the library's calls."""
