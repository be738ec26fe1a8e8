"""``python -m geo``: the ``ort`` command."""

from geo.cli import main

main()
