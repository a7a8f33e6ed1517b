"""Presets bundled with synthtune (TOML files in this package)."""
