"""`python -m bench.train_speed`: see the package docstring."""

from bench.train_speed.cli import main

main()
