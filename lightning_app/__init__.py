"""Tell signal from noise in hyperparameter search.

Data flows one way: config -> training (``model``, ``data``, ``tracking``) -> W&B run files
-> history sources (``runs``) -> RunSet -> analyses (``analysis``, ``analyses`` plugins) -> report.
"""

__version__ = "0.1.0"
