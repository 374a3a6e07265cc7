"""A pure-Python MQTT 3.1.1 broker (amqtt) for machines without Mosquitto: ``PORT`` argument.

amqtt keeps QoS 1 messages for an offline persistent session only when the client is not
anonymous, and its stock anonymous plugin marks every client anonymous. So clients that give
a username (any password; ``meterflow.local.start_broker``'s URL carries one) get sessions
that keep messages while they are away, as with Mosquitto; clients without one are still
served, with sessions that end with their connection.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session


class NamedSessions(BaseAuthPlugin):  # type: ignore[misc]
    """Accept every client; only one without a username has an anonymous session."""

    async def authenticate(self, *, session: Session) -> bool:
        """Admit ``session``, anonymous unless it named a user."""
        session.is_anonymous = not session.username
        return True


async def serve(port: int) -> None:
    """Serve MQTT on 127.0.0.1:``port`` until SIGTERM or SIGINT."""
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        # By its package path: run with -m, this module is also __main__.
        "plugins": {"meterflow.embedded_broker.NamedSessions": {}},
    }
    broker = Broker(config)
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await broker.shutdown()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
