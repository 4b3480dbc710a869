"""``python -m nbtracker``: the command line."""

from .cli import main

main()
