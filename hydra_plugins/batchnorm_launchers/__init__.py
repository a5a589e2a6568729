"""Hydra plugins of this project (Hydra loads launchers only from the hydra_plugins package)."""
