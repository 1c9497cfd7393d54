"""Front-end assets of the crosslens widgets (ES modules and CSS), read by crosslens._assets."""
