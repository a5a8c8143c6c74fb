"""One-command benchmarks: `python -m bench.<name>` prints figures and ratios."""
