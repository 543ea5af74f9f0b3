"""Text repair and normalization: each function is one funnel step, and a no-op on text it has nothing to fix.

Pure-ASCII text (most of a scientific corpus) skips Unicode repair and NFKC entirely: both are identities on it,
and ftfy is the slowest step of cleaning.
"""

from __future__ import annotations

import html
import re
import unicodedata

import ftfy

# ftfy repairs mojibake and friends; entities are the markup step's job and NFKC is applied afterwards.
_FTFY = ftfy.TextFixerConfig(unescape_html=False, normalization=None, explain=False)

_HIDDEN_BLOCKS = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
# A tag must start with a letter right after '<', so comparisons such as "a < b and c > d" survive.
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_BLOCK_TAG = re.compile(r"</?(?:p|div|br|li|ul|ol|h[1-6]|tr|table|section|article)\b[^<>]*>", re.IGNORECASE)
_MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\([^)\s]*\)")
_MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\((?:https?://|/|#)[^)\s]*\)")
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#\d{1,7}|#[xX][0-9A-Fa-f]{1,6});")

_LINE_BREAKS = re.compile(r"[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
# Only runs that need rewriting: two or more spaces, or whitespace other than a plain space.
_INLINE_SPACE = re.compile(r" [^\S\n]+|[^\S\n ][^\S\n]*")
_SPACE_AROUND_NEWLINE = re.compile(r" ?\n ?")
_PARAGRAPH_BREAKS = re.compile(r"\n{3,}")
_SPACE_BEFORE_PUNCT = re.compile(r" ([,.;:!?%)\]}])")
_SPACE_AFTER_OPEN = re.compile(r"([(\[{]) ")


def repair_unicode(text: str) -> str:
    """Mojibake, broken surrogates, C1 controls and the like, fixed by ftfy."""
    return text if text.isascii() else ftfy.fix_text(text, _FTFY)


def strip_markup(text: str) -> str:
    """HTML tags, comments, scripts and entities; Markdown links keep their text, images go."""
    if "<" in text:
        text = _HIDDEN_BLOCKS.sub(" ", text)
        text = _BLOCK_TAG.sub("\n", text)
        text = _TAG.sub("", text)
    if "](" in text:
        text = _MARKDOWN_IMAGE.sub("", text)
        text = _MARKDOWN_LINK.sub(r"\1", text)
    if "&" in text and _ENTITY.search(text):
        text = html.unescape(text)
    return text


def normalize_whitespace(text: str) -> str:
    """NFKC, control and zero-width characters removed, runs of spaces collapsed, at most one blank line between
    paragraphs, and tokenizer-style spacing undone (``word , word`` → ``word, word``)."""
    if text.isascii() and text.isprintable():  # no control character, tab or line break: only spaces to collapse
        if "  " in text:
            text = _INLINE_SPACE.sub(" ", text)
    else:
        text = _normalize_lines(text)
    text = text.strip()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return _SPACE_AFTER_OPEN.sub(r"\1", text)


def _normalize_lines(text: str) -> str:
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", _CONTROL.sub(" ", _LINE_BREAKS.sub("\n", text)))
    text = _INLINE_SPACE.sub(" ", text)
    if " \n" in text or "\n " in text:
        text = _SPACE_AROUND_NEWLINE.sub("\n", text)
    if "\n\n\n" in text:
        text = _PARAGRAPH_BREAKS.sub("\n\n", text)
    return text


def normalize_text(text: str) -> str:
    """All three steps in order, for callers that do not need to count them separately."""
    return normalize_whitespace(strip_markup(repair_unicode(text)))
