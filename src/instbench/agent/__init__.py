"""The agent that runs on the instance (and locally). Stdlib-only, Python >= 3.9."""
