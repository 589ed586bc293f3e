"""The broker topology, declared once: a topic exchange, one durable queue per consuming
service, and a dead-letter exchange and queue for messages that cannot be processed."""

from __future__ import annotations

from kombu import Exchange, Queue, binding

from .messages import EXCHANGE

events = Exchange(EXCHANGE, type="topic", durable=True)
dead_letter_exchange = Exchange("offerseal.dlx", type="fanout", durable=True)
dead_letter_queue = Queue(
    "offerseal.dead-letter", exchange=dead_letter_exchange, routing_key="#", durable=True
)

# Which routing keys each service consumes (the evidence service consumes nothing).
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "contracts": (
        "evidence.anchored.v1",
        "touchpoint.replied.v1",
        "touchpoint.missed.v1",
        "touchpoint.sent.v1",
        "touchpoint.failed.v1",
    ),
    "notify": (
        "agreement.#",
        "milestone.confirmed.v1",
        "candidate.code_requested.v2",
        "candidate.signer_bound.v1",
        # HR alerts in the team's chat
        "risk.changed.v1",
        "milestone.overdue.v1",
    ),
}


def service_queue(service: str, binding_keys: tuple[str, ...] | None = None) -> Queue:
    keys = binding_keys if binding_keys is not None else SUBSCRIPTIONS[service]
    return Queue(
        f"offerseal.{service}",
        exchange=events,
        bindings=[binding(events, routing_key=k) for k in keys],
        durable=True,
    )
