"""Simulated sweeps and planted studies for the benchmarks, the validation and the tests.

Not part of the runtime package: ``lightning_app`` never imports it. ``synthetic`` builds RunSets
with planted effects; ``calibration`` measures each test's false-positive rate and power over
many designs; ``planted_adaptive`` runs the adaptive sweep's decision code on planted sweeps.
"""
