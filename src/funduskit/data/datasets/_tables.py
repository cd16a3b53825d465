"""Spreadsheets (.csv, .xlsx, .xls) read through pandas, with columns matched by name.

Column names are matched ignoring case, spaces and punctuation (``"Glaucoma Risk"`` matches
``glaucoma_risk``; ``"X- Coordinate"`` matches ``"X-Coordinate"``). The header row is the first of
the top ten rows that holds an image-name column, so a title line above the header (IDRiD mirrors)
is skipped. Row numbers in errors are the file's own 1-based row numbers, as a spreadsheet
program or text editor shows them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from funduskit.core.errors import DataError
from funduskit.data.datasets._files import FileIndex, is_image_file, name_key, walk
from funduskit.data.sample import Sample

TABLE_SUFFIXES = frozenset({".csv", ".xlsx", ".xls"})

NAME_COLUMNS = ("FileName", "ImgName", "ImageName", "Image Name", "Image No", "Image", "image_id",
                "File", "Name")
"""Image-name columns, in the order they are preferred."""

LABEL_COLUMNS = ("Glaucoma Risk", "Glaucoma Label", "Label(Glaucoma=1)", "Glaucoma", "Label")
"""0/1 label columns, in the order they are preferred."""

FOVEA_X_COLUMNS = ("Fovea_X", "X- Coordinate", "X", "FoveaX")
FOVEA_Y_COLUMNS = ("Fovea_Y", "Y - Coordinate", "Y", "FoveaY")

_HEADER_SEARCH_ROWS = 10


@dataclass(frozen=True)
class Table:
    """One spreadsheet: its header and data rows, blank rows and columns dropped.

    Attributes:
        path: the file.
        frame: data rows; the index is the file's 1-based row number.
    """

    path: Path
    frame: pd.DataFrame

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def column(self, candidates: Sequence[str], *, required: bool = True, what: str = "") -> str | None:
        """The first column whose name matches one of ``candidates``.

        Raises:
            DataError: none matches and ``required``; the message lists the columns found.
        """
        by_key = {name_key(c): c for c in self.columns}
        for candidate in candidates:
            if name_key(candidate) in by_key:
                return by_key[name_key(candidate)]
        if not required:
            return None
        wanted = " or ".join(repr(c) for c in candidates)
        found = ", ".join(repr(c) for c in self.columns) or "none"
        label = f"{what} column" if what else "column"
        raise DataError(self.path, f"has no {label} ({wanted}); columns found: {found}",
                        fix="rename the header cell")

    def rows(self) -> Iterator[tuple[int, pd.Series]]:
        """``(row number in the file, row)`` for every data row."""
        for number, row in self.frame.iterrows():
            yield int(number), row


def _read_raw(path: Path) -> pd.DataFrame:
    """Every cell of the first sheet, no header; the index is the 0-based row in the file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            for encoding in ("utf-8-sig", "latin-1"):
                try:
                    return pd.read_csv(path, header=None, dtype=object, skip_blank_lines=False,
                                       encoding=encoding)
                except UnicodeDecodeError:
                    continue
        return pd.read_excel(path, header=None, dtype=object)
    except ImportError as error:
        fix = "save it as .xlsx or .csv" if suffix == ".xls" else "pip install openpyxl"
        raise DataError(path, f"cannot be read: {error}", fix=fix) from error
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except Exception as error:  # pandas and its engines raise many types for a damaged file
        raise DataError(path, f"is not a readable spreadsheet ({error})",
                        fix="open and save it again as .csv or .xlsx") from error
    raise DataError(path, "is not UTF-8 or Latin-1 text", fix="save it as UTF-8 CSV")


def read_table(path: str | Path, name_columns: Sequence[str] = NAME_COLUMNS) -> Table:
    """Read a spreadsheet; the header is the first of the top rows holding one of ``name_columns``.

    When no top row holds one, the first row is the header (and :meth:`Table.column` will say
    which columns it found).
    """
    path = Path(path)
    raw = _read_raw(path)
    wanted = {name_key(n) for n in name_columns}
    header_at = 0
    for position in range(min(_HEADER_SEARCH_ROWS, len(raw))):
        cells = {name_key(str(v)) for v in raw.iloc[position] if not _blank(v)}
        if cells & wanted:
            header_at = position
            break
    if raw.empty:
        return Table(path, pd.DataFrame())
    header = [("" if _blank(v) else str(v).strip()) for v in raw.iloc[header_at]]
    body = raw.iloc[header_at + 1 :].copy()
    body.columns = header
    body.index = [int(i) + 1 for i in body.index]  # 1-based file rows
    body = body.loc[:, [name != "" for name in header]]  # unnamed columns (IDRiD's empty tail)
    body = body.dropna(how="all")
    body = body[~body.apply(lambda row: all(_blank(v) for v in row), axis=1)] if len(body) else body
    return Table(path, body)


def find_tables(folder: Path, *, recursive_paths: Iterable[Path] | None = None) -> list[Path]:
    """Spreadsheets directly in ``folder`` (or among ``recursive_paths`` when given), by name."""
    paths = recursive_paths if recursive_paths is not None else folder.iterdir()
    return sorted(p for p in paths if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES
                  and not p.name.startswith((".", "~$")))


# --------------------------------------------------------------------------------------------
# Cell values
# --------------------------------------------------------------------------------------------


def _blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def cell_text(value: object) -> str | None:
    """A cell as stripped text; ``None`` for a blank cell; ``3.0`` reads as ``"3"``."""
    if _blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _float_or_nan(text: str) -> float:
    """``text`` as a float, NaN when it is not a number."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def parse_label(table: Table, row: int, column: str, value: object) -> int | None:
    """A 0/1 label cell as an int; ``None`` when blank.

    Raises:
        DataError: the cell holds anything but 0 or 1.
    """
    text = cell_text(value)
    if text is None:
        return None
    number = _float_or_nan(text)
    if number in (0.0, 1.0):
        return int(number)
    if text.lower() in ("true", "false"):
        return int(text.lower() == "true")
    raise DataError(table.path, f"column {column!r} holds {text!r}; a label must be 0 or 1",
                    row=row, fix="write 1 for glaucoma and 0 for not")


def parse_number(table: Table, row: int, column: str, value: object) -> float | None:
    """A numeric cell as float; ``None`` when blank.

    Raises:
        DataError: the cell is not a number.
    """
    text = cell_text(value)
    if text is None:
        return None
    number = _float_or_nan(text)
    if not math.isfinite(number):
        raise DataError(table.path, f"column {column!r} holds {text!r}; a number is expected", row=row)
    return number


def parse_point(table: Table, row: int, columns: tuple[str, str], values: tuple[object, object]
                ) -> tuple[float, float] | None:
    """An ``(x, y)`` pair of cells; ``None`` when both are blank or both are 0 (PALM and ADAM
    write 0, 0 for a fovea that is not visible).

    Raises:
        DataError: one coordinate is blank and the other is not, or either is not a number.
    """
    x = parse_number(table, row, columns[0], values[0])
    y = parse_number(table, row, columns[1], values[1])
    if x is None and y is None:
        return None
    if x is None or y is None:
        missing = columns[0] if x is None else columns[1]
        raise DataError(table.path, f"column {missing!r} is blank but its partner is not", row=row,
                        fix="give both coordinates or neither")
    if x == 0 and y == 0:
        return None
    return (x, y)


# --------------------------------------------------------------------------------------------
# Per-image annotations from a set of tables
# --------------------------------------------------------------------------------------------


@dataclass
class Annotation:
    """What the spreadsheets say about one image."""

    label: int | None = None
    fovea: tuple[float, float] | None = None


def read_annotations(
    tables: Iterable[Path],
    images: FileIndex,
    *,
    label_columns: Sequence[str] = LABEL_COLUMNS,
    require_content: bool = True,
) -> dict[Path, Annotation]:
    """Labels and fovea positions from every table, keyed by image path.

    Each table needs an image-name column and a label column and/or a ``Fovea_X``/``Fovea_Y``
    pair. Every named image must exist in ``images``.

    Raises:
        DataError: a table lacks the name column (or, with ``require_content``, both a label and
            a fovea column); a row names an image that is not there; a label is not 0/1; a
            coordinate is not a number.
    """
    annotations: dict[Path, Annotation] = {}
    for path in tables:
        table = read_table(path)
        if table.frame.empty:
            continue
        name_column = table.column(NAME_COLUMNS, what="image-name")
        label_column = table.column(label_columns, required=False)
        x_column = table.column(FOVEA_X_COLUMNS, required=False)
        y_column = table.column(FOVEA_Y_COLUMNS, required=False)
        has_fovea = x_column is not None and y_column is not None
        if require_content and label_column is None and not has_fovea:
            found = ", ".join(repr(c) for c in table.columns)
            raise DataError(
                path,
                f"has neither a label column ({' or '.join(map(repr, label_columns))}) nor fovea "
                f"columns ('Fovea_X', 'Fovea_Y'); columns found: {found}",
                fix="rename the header cells",
            )
        for row_number, row in table.rows():
            name = cell_text(row[name_column])
            if name is None:
                continue
            image = images.find(name)
            if image is None:
                raise DataError(
                    path,
                    f"names image {name!r}, which is not in {images.where}",
                    row=row_number,
                    fix="add the image or delete the row",
                )
            entry = annotations.setdefault(image, Annotation())
            if label_column is not None:
                label = parse_label(table, row_number, label_column, row[label_column])
                entry.label = label if label is not None else entry.label
            if has_fovea:
                fovea = parse_point(table, row_number, (x_column, y_column), (row[x_column], row[y_column]))
                entry.fovea = fovea if fovea is not None else entry.fovea
    return annotations


def annotated_sample(image: Path, annotation: Annotation | None, **fields: Any) -> Sample:
    """The :class:`Sample` of ``image`` with the label and fovea its spreadsheet row gives;
    ``fields`` set the rest (and override the label where the layout knows better)."""
    given: dict[str, Any] = {"fovea": annotation.fovea, "label": annotation.label} if annotation else {}
    return Sample(image_id=image.name, image_path=image, **(given | fields))


def scan_tree(root: Path, *, depth: int, mask_folders: frozenset[str], skipped_folders: frozenset[str],
              table_words: Sequence[str]) -> tuple[list[Path], FileIndex, list[Path]]:
    """``(photographs, masks, spreadsheets)`` below ``root``, told apart by folder names.

    A spreadsheet is a table file whose name holds one of ``table_words``; a mask is an image in a
    folder named in ``mask_folders`` (as :func:`name_key`); every other image is a photograph,
    unless it lies in a ``skipped_folders`` folder or an illustration folder.
    """
    photographs, masks, tables = [], [], []
    for path in walk(root, depth):
        folders = {name_key(part) for part in path.relative_to(root).parts[:-1]}
        if path.suffix.lower() in TABLE_SUFFIXES and any(word in path.name.lower() for word in table_words):
            tables.append(path)
        elif not is_image_file(path) or folders & skipped_folders or any("illustration" in f for f in folders):
            continue
        elif folders & mask_folders:
            masks.append(path)
        else:
            photographs.append(path)
    return sorted(photographs), FileIndex(masks, root), sorted(tables)
