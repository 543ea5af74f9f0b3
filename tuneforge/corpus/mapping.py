"""Turn a raw record (``tuneforge.corpus.readers``) into a canonical ``Example``, following its source's field
mapping (``FieldMapping``, set under ``fields:`` in ``source.yaml``: ``tuneforge.corpus.sources``).

A mapped name may be a dotted path reaching into nested objects (``meta.title``). ``document`` is a string, or a
list of strings joined with spaces; ``summary`` a string, or a list whose first entry is the training target and
whose distinct entries are all kept as references; ``id`` and ``group`` are strings or integers: without an id, the
id is a hash of source, document and summary, and the group defaults to the id. A record its reader already gives
under the canonical names (plain text) is read as it is. A record that cannot be mapped gives the ``Problem`` that
sends it to the quarantine (``missing_field``, ``wrong_type``, ``invalid_unicode``).
"""

from __future__ import annotations

from typing import Any

from tuneforge.corpus.readers import Problem, RawRecord
from tuneforge.corpus.records import Example, stable_id
from tuneforge.corpus.sources import FieldMapping

__all__ = ["has_id", "to_example"]


class _BadField(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


_MISSING = object()
IDENTITY = FieldMapping()


def to_example(record: RawRecord, mapping: FieldMapping, source: str) -> Example | Problem:
    """The canonical example for one raw record, or the ``Problem`` that sends it to the quarantine."""
    if record.canonical:
        mapping = IDENTITY
    try:
        document = _document(_required(record.data, mapping.document, "document"), mapping.document)
        summary, references = _summary(_required(record.data, mapping.summary, "summary"), mapping.summary)
        key = _optional_key(record.data, mapping.id, "id")
        group = _optional_key(record.data, mapping.group, "group")
    except _BadField as bad:
        return Problem(record.file, record.line, bad.reason, record.label + bad.detail, record.preview())
    key = key or stable_id(source, document, summary)
    return Example(id=f"{source}/{key}", source=source, group=group or key, document=document, summary=summary,
                   references=references)


def has_id(record: RawRecord, mapping: FieldMapping) -> bool:
    """Whether ``record`` carries an id of its own (without one, ``to_example`` derives it from the content)."""
    return record.canonical or _lookup(record.data, mapping.id) not in (_MISSING, None, "")


def _lookup(data: dict[str, Any], path: str) -> Any:
    if path in data:
        return data[path]
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _required(data: dict[str, Any], path: str, name: str) -> Any:
    value = _lookup(data, path)
    if value is _MISSING:
        raise _BadField("missing_field", f"missing field {path!r} (mapped to {name!r})")
    if value is None:
        raise _BadField("missing_field", f"field {path!r} (mapped to {name!r}) is null")
    return value


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, str) for item in value)


def _describe(value: Any) -> str:
    if isinstance(value, list):
        if not value:
            return "an empty list"
        return "a list containing " + next(type(item).__name__ for item in value if not isinstance(item, str))
    return type(value).__name__


def _not_text(path: str, name: str, value: Any) -> _BadField:
    return _BadField("wrong_type", f"field {path!r} (mapped to {name!r}) must be a string or a list of strings, "
                                   f"got {_describe(value)}")


def _unicode(text: str, path: str, name: str) -> str:
    """``text`` if it can be written as UTF-8 (a JSON escape such as ``\\ud800`` gives a lone surrogate: it cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise _BadField("invalid_unicode", f"field {path!r} (mapped to {name!r}) holds an unpaired surrogate "
                                           f"{error.object[error.start]!r} (from a JSON escape), which is not valid "
                                           "Unicode; fix the escape") from error
    return text


def _document(value: Any, path: str) -> str:
    if isinstance(value, str):
        return _unicode(value, path, "document")
    if _is_string_list(value):
        return _unicode(" ".join(value), path, "document")
    raise _not_text(path, "document", value)


def _summary(value: Any, path: str) -> tuple[str, list[str]]:
    """The training target and, when there are several distinct ones, every reference summary."""
    if isinstance(value, str):
        return _unicode(value, path, "summary"), []
    if _is_string_list(value):
        distinct = [_unicode(text, path, "summary") for text in dict.fromkeys(value)]
        return value[0], distinct if len(distinct) > 1 else []
    raise _not_text(path, "summary", value)


def _optional_key(data: dict[str, Any], path: str, name: str) -> str | None:
    value = _lookup(data, path)
    if value is _MISSING or value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _BadField("wrong_type", f"field {path!r} (mapped to {name!r}) must be a string or an integer, "
                                      f"got {_describe(value)}")
    return _unicode(str(value), path, name)
