"""Fixtures of the deployment tests: brokers configured as in production."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest
from secured_broker import SecuredBroker


@pytest.fixture
def secured_broker() -> Iterator[Callable[[], SecuredBroker]]:
    """Make production-configured brokers; each is stopped and removed at the end."""
    made: list[SecuredBroker] = []

    def make() -> SecuredBroker:
        broker = SecuredBroker()
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.server.stop()
        shutil.rmtree(broker.workdir, ignore_errors=True)
