"""What the evidence service accepts: document kinds and the statuses a document moves through."""

from __future__ import annotations

KINDS: tuple[str, ...] = (
    "offer_letter",
    "intent_agreement",
    "resignation_application",
    "resignation_acceptance",
    "handover_progress",
    "social_insurance_stop",
    "employment_certificate",
    "salary_statement",
    "non_compete_agreement",
    "notarized_resignation_letter",
    "signing_record",  # the candidate's evidence of intent, anchored by the contracts service
    "dossier_manifest",  # the file list of an agreement's dossier (contracts service)
    "employer_confirmation",  # the former employer's answer about a certificate (notify)
    "employer_reply_email",  # that answer as the employer's own e-mail, when it came so
    "other",
)

# Records OfferSeal's own services deposit through a `record` link: subject -> kind.
RECORD_KINDS: dict[str, str] = {
    "dossier_manifest": "dossier_manifest",
    "employer_confirmation": "employer_confirmation",
    "employer_reply_email": "employer_reply_email",
}

PENDING = "pending"
ANCHORED = "anchored"


def status_of(batch_state: str | None) -> str:
    """A document's status from the state of the batch that holds its current proof (None:
    in no batch yet, or back in the queue): anchored only once that batch is."""
    return ANCHORED if batch_state == "anchored" else PENDING


MAX_HASH_BATCH = 10_000
