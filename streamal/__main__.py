"""``python -m streamal``: the ``streamal`` command, for environments without the script."""

from streamal.cli.app import main

if __name__ == "__main__":
    main()
