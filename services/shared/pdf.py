"""PDFs a judge reads (the evidence certificate, the dossier's cover): the CJK font they are set
in, and their signature.

Signs a PDF (PAdES baseline: a CAdES detached signature, with an RFC 3161
signature time-stamp when a Time-Stamp Authority answers) with pyHanko, so any PDF reader shows
whether the file was altered after it was issued."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

WQY_PATHS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc"),
)
CID_FALLBACK = "STSong-Light"
_FONT: str | None = None


def cjk_font() -> str:
    """Registers (once) and names the font the PDFs are set in: WenQuanYi Micro Hei embedded
    when the machine has it, else reportlab's CID font STSong-Light (not embedded)."""
    global _FONT
    if _FONT is not None:
        return _FONT
    from reportlab.pdfbase import pdfmetrics

    for path in WQY_PATHS:
        if path.exists():
            from reportlab.pdfbase.ttfonts import TTFont

            pdfmetrics.registerFont(TTFont("WenQuanYiMicroHei", str(path), subfontIndex=0))
            _FONT = "WenQuanYiMicroHei"
            return _FONT
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    pdfmetrics.registerFont(UnicodeCIDFont(CID_FALLBACK))
    _FONT = CID_FALLBACK
    return _FONT


@dataclass(frozen=True)
class PdfSigningKey:
    """A PEM private key and the PEM certificate (optionally followed by its chain) it signs as."""

    key_pem: bytes
    cert_pem: bytes


def sign_pdf(
    pdf: bytes, key: PdfSigningKey, *, timestamp_url: str | None = None, reason: str = ""
) -> bytes:
    """The PDF with an approval signature over all of it. A TSA that does not answer leaves the
    signature without its time-stamp (logged), never unsigned."""
    from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers, timestamps
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    certs = list(load_certs_from_pemder_data(key.cert_pem))
    if not certs:
        raise ValueError("the certificate PEM holds no certificate")
    signer = signers.SimpleSigner(
        signing_cert=certs[0],
        signing_key=load_private_key_from_pemder_data(key.key_pem, passphrase=None),
        cert_registry=SimpleCertificateStore.from_certs(certs),
    )
    meta = signers.PdfSignatureMetadata(
        field_name="OfferSealCertificate",
        reason=reason or None,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
    )
    attempts: list[timestamps.TimeStamper | None] = [None]
    if timestamp_url:
        attempts.insert(0, timestamps.HTTPTimeStamper(timestamp_url, timeout=10))
    last_error: Exception | None = None
    for stamper in attempts:
        try:
            out = io.BytesIO()
            writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
            signers.sign_pdf(writer, meta, signer=signer, timestamper=stamper, output=out)
            return out.getvalue()
        except Exception as exc:  # a TSA that is down: sign without its time-stamp
            if stamper is None:
                raise
            last_error = exc
            log.warning("certificate signed without a time-stamp: the TSA failed (%s)", exc)
    raise RuntimeError(f"could not sign the certificate: {last_error}")
