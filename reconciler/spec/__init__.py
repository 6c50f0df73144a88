"""Desired state: the TOML spec files, their models and their loading."""
