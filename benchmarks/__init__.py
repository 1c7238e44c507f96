"""Performance workloads of pkpd (issue 8) and their runner: ``python -m benchmarks --help``."""
