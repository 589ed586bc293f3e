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
from typing import Any

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


@dataclass(frozen=True)
class Report:
    """A one-document report a judge reads: a title, an introduction, sections of (label,
    value) rows, the steps to verify it beside a QR code, and a footer line."""

    lang: str
    title: str
    intro: str
    sections: list[tuple[str, list[tuple[str, str]]]]
    how_heading: str
    steps: list[str]
    qr_url: str
    footer: str
    document_title: str
    empty_section: str = "-"  # what a section without rows says


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_report(report: Report) -> bytes:
    """The report as an unsigned A4 PDF, set in the CJK font; hashes, addresses and keys in a
    fixed-width face."""
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    font = cjk_font()
    base = ParagraphStyle("base", fontName=font, fontSize=8.5, leading=11.5, wordWrap="CJK")
    key_style = ParagraphStyle("key", parent=base, textColor=colors.HexColor("#505a5f"))
    mono = ParagraphStyle("mono", parent=base, fontName="Courier", fontSize=7.5, leading=10)
    title = ParagraphStyle("title", parent=base, fontSize=18, leading=24, spaceAfter=6)
    heading = ParagraphStyle(
        "h", parent=base, fontSize=11, leading=15, spaceBefore=6, spaceAfter=2, keepWithNext=1
    )

    def value_cell(text: str) -> Paragraph:
        style = mono if text.isascii() and " " not in text.split("\n")[0].strip() else base
        return Paragraph(_escape(text).replace("\n", "<br/>"), style)

    width = A4[0] - 40 * mm
    story: list[Any] = [
        Paragraph(_escape(report.title), title),
        Paragraph(_escape(report.intro), base),
        Spacer(1, 4 * mm),
    ]
    for head, rows in report.sections:
        story.append(Paragraph(_escape(head), heading))
        if not rows:
            story.append(Paragraph(_escape(report.empty_section), base))
            continue
        table = Table(
            [[Paragraph(_escape(k), key_style), value_cell(v)] for k, v in rows],
            colWidths=[40 * mm, width - 40 * mm],
        )
        table.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#b1b4b6")),
                    ("TOPPADDING", (0, 0), (-1, -1), 2),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ]
            )
        )
        story.append(table)
    qr = QrCodeWidget(report.qr_url)
    x0, y0, x1, y1 = qr.getBounds()
    side = 30 * mm
    drawing = Drawing(side, side, transform=[side / (x1 - x0), 0, 0, side / (y1 - y0), 0, 0])
    drawing.add(qr)
    steps = "<br/>".join(f"{i}. {_escape(s)}" for i, s in enumerate(report.steps, 1))
    how = Table([[Paragraph(steps, base), drawing]], colWidths=[width - side - 4 * mm, None])
    how.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story.append(KeepTogether([Paragraph(_escape(report.how_heading), heading), how]))
    story.append(Spacer(1, 4 * mm))
    story.append(Paragraph(_escape(report.footer), key_style))
    out = io.BytesIO()
    SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        title=report.document_title,
        author="OfferSeal",
        lang=report.lang,
    ).build(story)
    return out.getvalue()
