"""What the evidence service accepts: document kinds and the statuses a document moves through."""

from __future__ import annotations

from typing import NamedTuple

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

# Who a receipt names as the uploader when no API key sent the document.
CANDIDATE_LINK = "candidate-link"  # a candidate's upload through a signed link
OFFERSEAL_RECORD = "offerseal-record"  # a record OfferSeal's own services deposit
MAX_CANDIDATE_UPLOADS = 3  # per stage through the candidate's links (a leaked link is bounded)


class NewDocument(NamedTuple):
    """A document to take in (a named tuple: hash-only intake makes 10,000 of them a request,
    and a tuple is made five times faster than a frozen dataclass)."""

    kind: str
    candidate_ref: str
    sha256: str  # 0x hex, lower case
    agreement_id: str | None = None
    milestone: str | None = None
    content: bytes | None = None
    filename: str | None = None
    content_type: str | None = None


def candidate_may_upload(earlier: int) -> bool:
    """Whether a stage that already has `earlier` uploads through the candidate's links takes
    one more (the HR contact can always add documents with an API key)."""
    return earlier < MAX_CANDIDATE_UPLOADS
