"""Write simple text PDFs for benchmarks: many pages of distinct real text, English or Chinese.

English uses the standard Helvetica font. Chinese uses the non-embedded Adobe CID font
STSong-Light with the UniGB-UCS2-H CMap (what PDF viewers and PDFium resolve without an embedded
font file), so a real Chinese text layer can be written without any font on this machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

_HELVETICA = (b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",)
_STSONG = (
    b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [0 -200 1000 900] "
    b"/ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>",
    b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo "
    b"<< /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> /FontDescriptor 3 0 R /DW 1000 >>",
    b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H "
    b"/DescendantFonts [4 0 R] >>",
)


def _latin(line: str) -> str:
    ascii_line = line.encode("ascii", "replace").decode()
    escaped = ascii_line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"({escaped})"


def _chinese(line: str) -> str:
    return "<" + line.encode("utf-16-be").hex().upper() + ">"


def write_text_pdf(path: Path, pages: Sequence[Sequence[str]], *, chinese: bool = False) -> None:
    """One PDF page per entry of ``pages``, each a list of lines."""
    fonts = _STSONG if chinese else _HELVETICA
    encode = _chinese if chinese else _latin
    objects: list[bytes] = [b"", b"", *fonts]  # catalog and page tree are filled in last
    font_id = len(objects)
    page_ids: list[int] = []
    for lines in pages:
        shown = " ".join(f"{encode(line)} '" for line in lines)
        stream = f"BT /F1 11 Tf 15 TL 50 760 Td {shown} ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content_id = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (content_id, font_id)
        )
        page_ids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    kids = b" ".join(b"%d 0 R" % page for page in page_ids)
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
    out += trailer % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
