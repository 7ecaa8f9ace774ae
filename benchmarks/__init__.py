"""spillover's speed targets, each measured against its baseline in the same run: ``python -m benchmarks``."""
