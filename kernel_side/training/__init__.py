"""How models are fit: one early-stopping loop behind every ``fit_*``."""
