"""How explanations are computed: one module per paper."""
