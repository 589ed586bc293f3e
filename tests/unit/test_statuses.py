"""HTTP statuses are mapped in one place at the edge (`problems.STATUSES`, plus a service's own
table): no error class carries a status, and each answers what it always did."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from flask import Flask

import offerseal
from offerseal.contracts import errors as contracts
from offerseal.contracts.edge import STATUSES as CONTRACTS_STATUSES
from offerseal.evidence import errors as evidence
from offerseal.notify import errors as notify
from offerseal.shared import errors as shared
from offerseal.shared import links, problems
from offerseal.shared.idempotency import IdempotencyConflict
from offerseal.web import errors as web


def every_error() -> set[type[shared.OfferSealError]]:
    for module in pkgutil.walk_packages(offerseal.__path__, "offerseal."):
        if ".migrations." not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: set[type[shared.OfferSealError]] = set()
    todo = [shared.OfferSealError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_no_error_class_knows_its_http_status() -> None:
    errors = every_error()
    assert len(errors) > 30
    knowing = [cls.__qualname__ for cls in errors if "status" in vars(cls)]
    assert not knowing


EXPECTED: list[tuple[type[Exception], int]] = [
    (shared.OfferSealError, 500),
    (shared.TransientError, 503),
    (shared.ValidationFailed, 422),
    (shared.NotFound, 404),
    (shared.Conflict, 409),
    (shared.Unauthorized, 401),
    (shared.Forbidden, 403),
    (shared.PayloadTooLarge, 413),
    (shared.UnsupportedMediaType, 415),
    (shared.TooManyRequests, 429),
    (links.LinkExpired, 410),
    (links.LinkRevoked, 410),
    (IdempotencyConflict, 409),
    (contracts.AgreementNotFound, 404),
    (contracts.InvalidSignature, 422),
    (contracts.ChainRefusal, 409),
    (contracts.SenderStopped, 503),
    (contracts.CandidateNotEnrolled, 409),
    (contracts.DossierNotFound, 404),
    (contracts.StillOffering, 409),
    (evidence.DocumentNotFound, 404),
    (evidence.ProofPending, 409),
    (evidence.IdempotencyConflict, 409),
    (evidence.NoContent, 404),
    (evidence.UploadLimitReached, 409),
    (evidence.MasterKeyMissing, 503),
    (evidence.CertificatePending, 409),
    (evidence.SchemaNotFound, 404),
    (notify.AlreadyUsed, 410),
    (notify.TouchpointNotFound, 404),
    (notify.CandidateNotFound, 404),
    (notify.TemplateNotFound, 404),
    (notify.RetryLater, 503),
    (notify.Rejected, 500),
]


@pytest.mark.parametrize(("cls", "status"), EXPECTED, ids=lambda v: getattr(v, "__name__", v))
def test_each_error_answers_its_status(cls: type[Exception], status: int) -> None:
    error = cls.__new__(cls)  # the status depends on the class only
    assert problems.status_of(error) == status


def test_a_service_adds_its_own_errors_in_its_app_only() -> None:
    failed = contracts.TransactionFailed("reverted")
    assert problems.status_of(failed) == 500  # no app: the shared table
    app = Flask("contracts")
    problems.map_statuses(app, CONTRACTS_STATUSES)
    with app.app_context():
        assert problems.status_of(failed) == 502
        assert problems.status_of(contracts.ChainRefusal("InvalidState")) == 409
    other = Flask("web")
    problems.map_statuses(other, {web.AssetsMissing: 503})
    with other.app_context():
        assert problems.status_of(web.AssetsMissing()) == 503
        assert problems.status_of(failed) == 500


def test_an_error_relaying_another_services_answer_keeps_its_status() -> None:
    from offerseal.web.console.contracts_client import ContractsRefused

    assert problems.status_of(ContractsRefused(409, "Refused by the contract", "no")) == 409
