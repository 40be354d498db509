"""Releases: DP aggregates out, budget debited, cached, published."""
