"""``python -m lightning_app``: see :func:`lightning_app.commands.main`."""

from lightning_app.commands import main

if __name__ == "__main__":
    main()
