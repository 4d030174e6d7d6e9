"""The built-in analyses, registered through the ``lightning_app.analyses`` entry points.

They are declared in pyproject.toml exactly as a third-party plugin declares its own, and use only
the public API of :mod:`lightning_app.analysis`.
"""
