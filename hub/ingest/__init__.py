"""Uploads: read an extract, validate it, pseudonymize it, store it in one transaction."""
