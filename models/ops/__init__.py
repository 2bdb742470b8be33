"""Building blocks shared by several models (defined once, reused everywhere)."""
