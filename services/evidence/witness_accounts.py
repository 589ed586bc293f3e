"""Tenants' own judicial-chain accounts (Tencent Cloud BTOE): set by the tenant's admin through
the API, sealed under the master key (the documents' envelope encryption, the tenant and witness
bound in as the id), never returned or logged. A tenant's batches are then deposited with its own
account, and its proof bundles show that deposit instead of the deployment's (OFFERSEAL_BTOE_*,
the fallback)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from offerseal_verify.deposits import BTOE, BTOE_HASH_TYPES

from ..shared.auth import READ_ROLES, Principal
from ..shared.db import Database
from ..shared.errors import ValidationFailed
from ..shared.models import iso, utcnow
from .crypto import DocumentCipher, Sealed
from .models import WitnessAccount

log = logging.getLogger(__name__)
WITNESSES = (BTOE,)
_SECRET_ID = re.compile(r"^[A-Za-z0-9]{8,128}$")
_SECRET_KEY = re.compile(r"^[\x21-\x7e]{8,128}$")
_REGION = re.compile(r"^[a-z]{2,8}(-[a-z]{2,16}){1,2}(-\d{1,2})?$")


@dataclass(frozen=True)
class Account:
    tenant: str
    witness: str
    secret_id: str
    secret_key: str
    region: str
    hash_algorithm: str

    def __repr__(self) -> str:  # never the credentials
        return f"Account({self.tenant!r}, {self.witness!r}, region={self.region!r})"


def _sealed_id(tenant: str, witness: str) -> str:
    return f"witness-account:{witness}:{tenant}"


class WitnessAccounts:
    def __init__(
        self,
        db: Database,
        cipher: DocumentCipher,
        deployment: Callable[[str], dict[str, Any] | None] = lambda _witness: None,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.deployment = deployment  # the deployment's account, as shown (no secret)

    def _witness(self, witness: str) -> str:
        if witness != "btoe":
            raise ValidationFailed("witness", "btoe (Tencent Cloud BTOE)")
        return BTOE

    def get(self, principal: Principal, witness: str) -> dict[str, Any]:
        principal.require(*READ_ROLES)
        name = self._witness(witness)
        with self.db.sessions() as session:
            row = session.get(WitnessAccount, (principal.tenant, name))
            if row is not None:
                return {
                    "witness": name,
                    "source": "tenant",
                    "secret_id": row.secret_id_hint + "…",
                    "region": row.region,
                    "hash": row.hash_algorithm,
                    "updated_at": iso(row.updated_at),
                }
        fallback = self.deployment(name)
        if fallback is not None:
            return {"witness": name, "source": "deployment", **fallback}
        return {"witness": name, "source": "none"}

    def put(self, principal: Principal, witness: str, body: dict[str, Any]) -> dict[str, Any]:
        principal.require("admin")
        name = self._witness(witness)
        secret_id = str(body.get("secret_id") or "")
        secret_key = str(body.get("secret_key") or "")
        region = str(body.get("region") or "ap-guangzhou")
        hash_algorithm = str(body.get("hash") or "sm3")
        if not _SECRET_ID.match(secret_id):
            raise ValidationFailed("secret_id", "Tencent Cloud's SecretId (letters and digits)")
        if not _SECRET_KEY.match(secret_key):
            raise ValidationFailed("secret_key", "Tencent Cloud's SecretKey (8-128 characters)")
        if not _REGION.match(region):
            raise ValidationFailed("region", "a Tencent Cloud region such as ap-guangzhou")
        if hash_algorithm not in BTOE_HASH_TYPES:
            raise ValidationFailed("hash", "sm3 or sha256")
        sealed = self.cipher.seal(
            _sealed_id(principal.tenant, name),
            json.dumps({"secret_id": secret_id, "secret_key": secret_key}).encode(),
        )
        with self.db.transaction() as session:
            row = session.get(WitnessAccount, (principal.tenant, name))
            if row is None:
                row = WitnessAccount(tenant=principal.tenant, witness=name)
                session.add(row)
            row.key_version, row.wrapped_key = sealed.key_version, sealed.wrapped_key
            row.nonce, row.ciphertext = sealed.nonce, sealed.ciphertext
            row.secret_id_hint = secret_id[:4]
            row.region, row.hash_algorithm = region, hash_algorithm
            row.updated_by, row.updated_at = principal.key_id, utcnow()
        return self.get(principal, witness)

    def delete(self, principal: Principal, witness: str) -> dict[str, Any]:
        principal.require("admin")
        name = self._witness(witness)
        with self.db.transaction() as session:
            row = session.get(WitnessAccount, (principal.tenant, name))
            if row is not None:
                session.delete(row)
        return self.get(principal, witness)

    def accounts(self) -> list[Account]:
        """Every tenant's account, opened (for the depositor only)."""
        with self.db.sessions() as session:
            rows = list(session.execute(select(WitnessAccount)).scalars())
        out: list[Account] = []
        for row in rows:
            try:
                plain = self.cipher.open(
                    _sealed_id(row.tenant, row.witness),
                    Sealed(row.key_version, row.wrapped_key, row.nonce, row.ciphertext),
                )
            except Exception as exc:  # another master key, or moved onto another tenant
                log.error(
                    "the %s account of tenant %s does not open (%s): its batches wait",
                    row.witness,
                    row.tenant,
                    type(exc).__name__,
                )
                continue
            secret = json.loads(plain)
            out.append(
                Account(
                    row.tenant,
                    row.witness,
                    secret["secret_id"],
                    secret["secret_key"],
                    row.region,
                    row.hash_algorithm,
                )
            )
        return out
