"""Models written the way you would write your own: any LightningModule the CLI can import.

``python -m lightning_app fit --config configs/examples/digits_cnn.yaml`` trains
:class:`DigitsCNN`; docs/own-model.md says what a model must log for the analyses to read it.
"""

from lightning_app.examples.digits_cnn import DigitsCNN

__all__ = ["DigitsCNN"]
