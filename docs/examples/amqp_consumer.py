"""Print the records that teltotwist's amqp sink publishes, one JSON line each.

Declares the exchange (as the sink does) and a durable queue bound to it, so
records wait in RabbitMQ while this consumer is down. Run it before the
gateway: until a queue is bound, the broker returns every record and the
gateway does not acknowledge the trackers.

    python amqp_consumer.py --url amqp://guest:guest@localhost:5672/%2F
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import pika  # type: ignore[import-untyped]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672/%2F")
    parser.add_argument("--exchange", default="teltonika")
    parser.add_argument("--queue", default="teltonika-records")
    parser.add_argument("--binding", default="teltonika.#", help="routing key pattern")
    arguments = parser.parse_args()

    connection = pika.BlockingConnection(pika.URLParameters(arguments.url))
    channel = connection.channel()
    channel.exchange_declare(arguments.exchange, "topic", durable=True)
    channel.queue_declare(arguments.queue, durable=True)
    channel.queue_bind(arguments.queue, arguments.exchange, arguments.binding)
    channel.basic_qos(prefetch_count=100)

    def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
        record = json.loads(body)
        # A tracker resends records it was not acknowledged for: store them
        # by id (properties.message_id is the same id) and duplicates vanish.
        print(json.dumps(record), flush=True)
        channel.basic_ack(method.delivery_tag)  # only once the record is kept

    channel.basic_consume(arguments.queue, on_message)
    print(
        f"consuming {arguments.queue}: {arguments.binding} on {arguments.exchange}",
        file=sys.stderr,
        flush=True,
    )
    try:
        channel.start_consuming()
    except KeyboardInterrupt:
        connection.close()


if __name__ == "__main__":
    main()
