"""The ovphub command line."""
