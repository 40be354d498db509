"""Agreements inside the hub: registering versions, and deciding which version governs what."""
