"""``python -m streamal`` runs the command line."""

from streamal.cli.app import main

main()
