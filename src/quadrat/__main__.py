"""``python -m quadrat``: the command line, as the ``quadrat`` script."""

from quadrat.cli import main

main()
