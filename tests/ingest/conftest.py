"""Ingest fixtures: a private broker with raised limits and a publisher connected to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ingest.harness import BROKER_LIMITS, Publisher
from tests.services import PrivateMosquitto


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateMosquitto]:
    """A private Mosquitto of one test module, with persistence and unlimited queues."""
    with PrivateMosquitto(BROKER_LIMITS) as server:
        yield server


@pytest.fixture
def publisher(broker: PrivateMosquitto) -> Iterator[Publisher]:
    """A publisher connected to the module's broker."""
    pub = Publisher(broker.url)
    yield pub
    pub.close()
