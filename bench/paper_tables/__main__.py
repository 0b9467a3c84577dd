"""`python -m bench.paper_tables`: see the package docstring."""

from bench.paper_tables.cli import main

main()
