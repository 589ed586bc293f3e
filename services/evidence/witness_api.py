"""HTTP entry point of a tenant's own judicial-chain account: its admin sets it (the secret is
sealed, never returned), anyone of the tenant sees which account deposits its batches."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from ..shared.auth import READ_ROLES
from ..shared.guards import roles
from ..shared.web import principal
from .witness_accounts import WitnessAccounts

blp = Blueprint(
    "witnesses", __name__, url_prefix="/v1", description="A tenant's judicial-chain account"
)
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def accounts() -> WitnessAccounts:
    found: WitnessAccounts = current_app.extensions["offerseal.witness_accounts"]
    return found


class AccountIn(ma.Schema):
    secret_id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    secret_key = fields.String(required=True, validate=validate.Length(min=1, max=128))
    region = fields.String(load_default="ap-guangzhou", validate=validate.Length(max=40))
    hash = fields.String(load_default="sm3", validate=validate.OneOf(["sm3", "sha256"]))


@blp.route("/witnesses/<string:witness>")
class WitnessAccount(MethodView):
    @roles(*READ_ROLES)
    @blp.doc(
        security=BEARER,
        summary="Which account deposits the tenant's batches: its own, the deployment's, none "
        "(the SecretId shown by its first characters, the key never)",
    )
    @blp.response(200)
    def get(self, witness: str) -> dict[str, Any]:
        return accounts().get(principal(), witness)

    @roles("admin")
    @blp.doc(
        security=BEARER,
        summary="Set the tenant's own Tencent Cloud BTOE account (`btoe`): sealed under the "
        "master key, never returned",
    )
    @blp.arguments(AccountIn)
    @blp.response(200)
    def put(self, body: dict[str, Any], witness: str) -> dict[str, Any]:
        return accounts().put(principal(), witness, body)

    @roles("admin")
    @blp.doc(security=BEARER, summary="Remove it: the deployment's account deposits again")
    @blp.response(200)
    def delete(self, witness: str) -> dict[str, Any]:
        return accounts().delete(principal(), witness)
