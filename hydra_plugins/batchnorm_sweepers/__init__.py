"""Hydra sweepers of this project (Hydra loads plugins only from the hydra_plugins package)."""
