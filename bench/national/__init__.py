"""National benchmark (SYNTHETIC data): see __main__.py."""
