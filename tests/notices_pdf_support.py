"""The notice tests' made-up batches: one copy, in ``hub.notices.samples`` (the demo and the
bench use them too)."""

from hub.notices.samples import (
    csv_bytes,
    make_notice_pdf,
    make_recipients_csv,
    make_recipients_xlsx,
    recipients_rows,
    xlsx_bytes,
)

__all__ = ["csv_bytes", "make_notice_pdf", "make_recipients_csv", "make_recipients_xlsx",
           "recipients_rows", "xlsx_bytes"]
