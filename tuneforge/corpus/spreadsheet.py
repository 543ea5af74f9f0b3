"""The rows of one sheet of an ``.xlsx`` workbook, streamed with openpyxl's read-only mode.

Cells are read as values (a formula gives the value it had when the workbook was last saved). With defusedxml
installed, as it is here, openpyxl parses the workbook's XML without expanding entities.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet._read_only import ReadOnlyWorksheet

# What openpyxl raises for a file that is not a readable workbook; XML parse errors are SyntaxErrors.
WORKBOOK_ERRORS = (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, TypeError, SyntaxError, EOFError)


class WorkbookError(Exception):
    """A workbook that cannot be read, or that lacks the sheet asked for."""


@contextmanager
def open_sheet(path: Path | BinaryIO, sheet: str | None) -> Iterator[ReadOnlyWorksheet]:
    """The sheet named ``sheet`` of the workbook at ``path`` (or in a seekable stream), or the first one; the
    workbook is closed on leaving."""
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except WORKBOOK_ERRORS as error:
        raise WorkbookError(f"not a readable .xlsx workbook: {error}") from error
    try:
        yield _select(workbook, sheet)
    finally:
        workbook.close()


def _select(workbook: openpyxl.Workbook, sheet: str | None) -> ReadOnlyWorksheet:
    names = [worksheet.title for worksheet in workbook.worksheets]
    if sheet is None:
        if not names:
            raise WorkbookError("the workbook has no worksheet")
        return workbook.worksheets[0]
    if sheet not in names:
        raise WorkbookError(f"the workbook has no sheet {sheet!r} (its sheets: {', '.join(map(repr, names))}); "
                            "set xlsx.sheet in source.yaml to one of them")
    return workbook[sheet]


def sheet_rows(worksheet: ReadOnlyWorksheet) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """``(row number as the spreadsheet shows it, cell values)`` for every row, empty ones included."""
    try:
        yield from enumerate(worksheet.iter_rows(min_row=1, values_only=True), start=1)
    except WORKBOOK_ERRORS as error:
        raise WorkbookError(f"the sheet {worksheet.title!r} is damaged: {error}") from error
