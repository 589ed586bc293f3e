"""Which judicial-chain deposits a tenant's bundle shows: its own account's where it has one,
else the deployment's, never another tenant's; and the sealed account opens only as its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from offerseal.evidence.adapters.storage import SqlReads
from offerseal.evidence.crypto import DocumentCipher
from offerseal.evidence.domain.records import deposit_key
from offerseal.evidence.models import Batch, BatchDeposit, WitnessAccount
from offerseal.evidence.witness_accounts import WitnessAccounts
from offerseal.shared.auth import Principal
from offerseal.shared.db import Database
from offerseal.shared.errors import Forbidden, ValidationFailed

BTOE = "tencent-btoe"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'evidence.db'}")
    database.migrate()
    yield database
    database.dispose()


def test_a_tenant_sees_its_own_deposit_else_the_deployments(db: Database) -> None:
    with db.transaction() as session:
        batch = Batch(
            root="0x" + "ab" * 32,
            leaf_count=2,
            state="anchored",
            chain_id=31337,
            registry_address="0x" + "00" * 20,
            signer="0x" + "00" * 20,
        )
        session.add(batch)
        session.flush()
        batch_id = batch.id
        for witness, evidence in (
            (BTOE, "deployment"),
            (deposit_key(BTOE, "acme"), "acme"),
            (deposit_key(BTOE, "initech"), "initech"),
        ):
            session.add(
                BatchDeposit(batch_id=batch_id, witness=witness, entry={"evidence_id": evidence})
            )
    assert len(deposit_key(BTOE, "t" * 128)) <= 40
    with db.sessions() as session:
        reads = SqlReads(session)
        shown = {
            tenant: [e["evidence_id"] for e in reads.deposits(batch_id, tenant)]
            for tenant in ("acme", "initech", "globex")
        }
    assert shown == {"acme": ["acme"], "initech": ["initech"], "globex": ["deployment"]}


def test_the_account_is_sealed_to_its_tenant_and_checked(db: Database) -> None:
    accounts = WitnessAccounts(db, DocumentCipher(os.urandom(32)))
    admin = Principal("k-admin", "admin", "acme")
    with pytest.raises(Forbidden):
        accounts.put(Principal("k-hr", "hr", "acme"), "btoe", {})
    with pytest.raises(ValidationFailed):
        accounts.put(admin, "btoe", {"secret_id": "AKID0000", "secret_key": "short"})
    with pytest.raises(ValidationFailed):
        accounts.put(admin, "twc", {"secret_id": "AKID0000", "secret_key": "k" * 20})
    shown = accounts.put(admin, "btoe", {"secret_id": "AKID00000000", "secret_key": "k" * 20})
    assert shown == {**shown, "source": "tenant", "secret_id": "AKID…", "hash": "sm3"}
    [account] = accounts.accounts()
    assert (account.tenant, account.secret_key) == ("acme", "k" * 20)
    assert "k" * 20 not in repr(account)
    # moved onto another tenant, the sealed credentials do not open
    with db.transaction() as session:
        row = session.get(WitnessAccount, ("acme", BTOE))
        assert row is not None
        row.tenant = "globex"
    assert accounts.accounts() == []  # skipped (and logged), the other accounts go on
