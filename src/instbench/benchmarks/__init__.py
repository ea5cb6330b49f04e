"""Benchmarks run by the agent. Stdlib-only: this package is shipped inside agent.pyz."""
