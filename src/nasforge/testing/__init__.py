"""Conformance suites that every registered space, strategy, estimator and supernet must pass.

As Optuna ships ``optuna/testing/pytest_samplers.py``: each module holds a test class parametrised over its
registry when pytest collects it, so registering a component enrols it. Subclass in a test file::

    from nasforge.testing.pytest_spaces import SpaceSuite

    class TestSpaces(SpaceSuite):
        options = {**SpaceSuite.options, "myspace": {"depth": 2}}   # small settings for your space

The modules need pytest (a test dependency); the library never imports this package, and importing
``nasforge.testing`` itself needs nothing beyond the library. A few checks are marked ``slow`` (register the
marker in your pytest configuration to silence the unknown-marker warning).
"""

from __future__ import annotations
