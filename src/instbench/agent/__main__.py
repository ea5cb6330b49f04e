"""`python -m instbench.agent` and the zipapp's entry point."""

from instbench.agent.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
