"""Storage: models, engine and session handling, migrations."""
