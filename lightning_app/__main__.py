"""``python -m lightning_app``: see :func:`lightning_app.cli.main`."""

from lightning_app.cli import main

if __name__ == "__main__":
    main()
