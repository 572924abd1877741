"""Helpers to run the real ``occlupose`` command line in a subprocess."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli


@pytest.fixture
def cli():
    return run_cli
