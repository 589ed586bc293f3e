"""Message schemas: one declaration per type; what a publisher builds, a consumer loads."""

from __future__ import annotations

import json

import pytest

from offerseal.shared import messages

PAYLOAD = {
    "document_id": "d-1",
    "kind": "resignation_acceptance",
    "candidate_ref": "c-1",
    "agreement_id": "ag-1",
    "milestone": "resignation_accepted",
    "leaf": "0x" + "11" * 32,
    "root": "0x" + "22" * 32,
    "proof": ["0x" + "33" * 32],
    "chain_id": 31337,
    "registry": "0x" + "44" * 20,
    "tx_hash": "0x" + "55" * 32,
    "block_number": 3,
    "block_timestamp": 1_764_087_600,
    "batch_id": 1,
}


def test_build_then_parse_round_trips_through_json() -> None:
    body = json.loads(json.dumps(messages.build(messages.EVIDENCE_ANCHORED, "acme", PAYLOAD)))
    message = messages.parse(body)
    assert message.type is messages.EVIDENCE_ANCHORED
    assert message.tenant == "acme"
    assert message.payload["milestone"] == "resignation_accepted"
    assert messages.EVIDENCE_ANCHORED.routing_key == "evidence.anchored.v1"


@pytest.mark.parametrize(
    "body,reason",
    [
        ("not a dict", "not a JSON object"),
        ({"type": "evidence.anchored"}, "invalid envelope"),
    ],
)
def test_bad_bodies_raise_message_error_with_reason(body: object, reason: str) -> None:
    with pytest.raises(messages.MessageError, match=reason):
        messages.parse(body)


def test_unknown_type_and_bad_payload_are_refused() -> None:
    body = messages.build(messages.EVIDENCE_ANCHORED, "acme", PAYLOAD)
    with pytest.raises(messages.MessageError, match="unknown message type"):
        messages.parse({**body, "type": "evidence.exploded"})
    with pytest.raises(messages.MessageError, match="payload"):
        messages.parse({**body, "payload": {**PAYLOAD, "root": "0x12"}})


def test_building_refuses_an_invalid_payload() -> None:
    import marshmallow as ma

    with pytest.raises(ma.ValidationError):
        messages.build(messages.EVIDENCE_ANCHORED, "acme", {**PAYLOAD, "leaf": "nope"})
