"""Credentials by Yelp's detect-secrets: its regex plugins (cloud keys, API tokens, JWTs, private keys, credentials
in URLs) and its keyword plugin with the config-file rules (``password: ...``, ``api_key=...``), run over free text;
plus three plugins of our own in detect-secrets' form for what it misses in prose and newer key shapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from re import _constants as sre
from re import _parser as sre_parse

from detect_secrets.plugins import keyword
from detect_secrets.plugins.base import RegexBasedDetector

from tuneforge.pii.kinds import Span


class NewerKeysDetector(RegexBasedDetector):
    """Keys detect-secrets 1.5 has no rule for, in their providers' documented shapes: Google API keys ("AIza" and 35
    URL-safe characters), OpenAI project/service keys (sk-proj-, sk-svcacct-, sk-admin-) and GitHub fine-grained
    tokens (github_pat_)."""

    secret_type = "Newer API Key"
    denylist = [
        re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
        re.compile(r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}"),
        re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,}"),
    ]


class CredentialsInUrlDetector(RegexBasedDetector):
    """user:password@ in any URL scheme; detect-secrets' BasicAuthDetector refuses passwords holding characters such
    as ``*`` or ``!`` that URLs allow."""

    secret_type = "Basic Auth Credentials"
    denylist = [re.compile(r"://[^\s:/@]+:([^\s/@]+)@(?=[\w.-])")]


class PasswordInProseDetector(RegexBasedDetector):
    """A password given in a sentence ("my password is Tr0ub4dor&3", "login admin / password hunter2"): the word
    after it counts when it has a digit or a symbol, which common words do not."""

    secret_type = "Password in prose"
    denylist = [re.compile(
        r"(?i:\b(?:password|passwd|passcode|pwd|pin)\b)(?:\s+(?:is|was|reset to|set to|changed to))?\s*[:=/-]?\s*"
        r"[\"'“]?((?=[^\s\"'”]*[\d!@#$%^&*?])[^\s\"'”,;]{4,})"
    )]


_PEM_END = re.compile(r"-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----")
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_\-+/=.]*[A-Za-z0-9_\-+/=]")  # the rest of a token a rule matched the start of
_URL_USER = re.compile(r"[^\s/:@]+:$")


@cache
def _plugins() -> tuple[RegexBasedDetector, ...]:
    """detect-secrets' regex plugins, from its own registry, and ours. IP addresses are the IP kind's (Presidio,
    private ranges too), so its public-IP plugin is left out."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    theirs = [cls() for cls in get_mapping_from_secret_type_to_class().values()
              if issubclass(cls, RegexBasedDetector) and cls.__name__ != "IPPublicDetector"]
    return (NewerKeysDetector(), CredentialsInUrlDetector(), PasswordInProseDetector(), *theirs)


def find_secrets(text: str) -> Iterator[Span]:
    """Every credential detect-secrets finds in ``text``: ``CREDENTIALS`` for a password in a URL, ``SECRET`` for
    the rest; a private key spans its whole PEM block. A pattern whose required text (``_required``) is absent is
    not run: it cannot match."""
    lowered, ascii_text = text.lower(), text.isascii()
    for plugin in _plugins():
        kind = "CREDENTIALS" if plugin.secret_type == "Basic Auth Credentials" else "SECRET"
        valid = getattr(plugin, "is_formally_valid", None)
        # The plugins' own patterns, matched here for positions (their analyze_string yields a rule's first group,
        # which is sometimes the secret and sometimes just its prefix, "ghp").
        for pattern in plugin.denylist:
            if not _may_match(pattern, text, lowered, ascii_text):
                continue
            for match in pattern.finditer(text):
                group = _secret_group(match)
                if valid is None or valid(match.group(group)):
                    yield _span(text, match.start(group), match.end(group), kind)
    if not any(_may_match(rule, text, lowered, ascii_text) for rule in keyword.CONFIG_DENYLIST_REGEX_TO_GROUP):
        return  # none of the keyword rules can match: analyze_string would yield nothing
    detector = _keyword_detector()
    for value in set(detector.analyze_string(text, denylist_regex_to_group=keyword.CONFIG_DENYLIST_REGEX_TO_GROUP)):
        # The config rules read to the end of the line; in prose the secret is the first word after the key.
        first_word = value.strip().split()[0] if value.strip() else ""
        first_word = first_word.strip("'\",;")
        if len(first_word) >= 4:
            for match in re.finditer(re.escape(first_word), text):
                yield Span(match.start(), match.end(), "SECRET", 1.0)


# Required text, read off the parsed pattern: alternatives one of which every match contains, each a set of literals
# the match holds all of (literal runs outside optional parts; one alternative per alternative of a branch). A literal
# is (text, whether it matches case-insensitively): those are looked for in the lower-cased text, which is exact for
# ASCII text and literals only (IGNORECASE also pairs "s" with "ſ", "i" with "ı", "k" with the Kelvin sign), so
# other texts run the pattern.
_Literal = tuple[str, bool]
_Required = frozenset[frozenset[_Literal]]
_MAX_ALTERNATIVES = 64


def _may_match(pattern: re.Pattern[str], text: str, lowered: str, ascii_text: bool) -> bool:
    required = _required(pattern)
    if required is None:
        return True
    return any(all((literal in lowered or not ascii_text) if folded else literal in text for literal, folded in term)
               for term in required)


@cache
def _required(pattern: re.Pattern[str]) -> _Required | None:
    parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    return _required_in(parsed, bool(parsed.state.flags & sre.SRE_FLAG_IGNORECASE))


def _required_in(items, folded: bool) -> _Required | None:  # noqa: ANN001 - a parsed (sub)pattern
    """What a sequence requires: all its literal runs and the requirements of its mandatory parts."""
    parts: list[_Required] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            parts.append(frozenset({frozenset({("".join(run), folded)})}))
            run.clear()

    for op, av in items:
        if op is sre.LITERAL and (av < 128 or not folded):
            run.append(chr(av).lower() if folded else chr(av))
            continue
        close_run()
        if op is sre.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            inner = (folded or bool(add_flags & sre.SRE_FLAG_IGNORECASE)) and not del_flags & sre.SRE_FLAG_IGNORECASE
            found = _required_in(sub, inner)
        elif op is sre.ATOMIC_GROUP:
            found = _required_in(av, folded)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and av[0] >= 1:
            found = _required_in(av[2], folded)
        elif op is sre.BRANCH:
            alternatives = [_required_in(branch, folded) for branch in av[1]]
            found = None if any(a is None for a in alternatives) else frozenset().union(*alternatives)
        else:
            found = None
        if found is not None:
            parts.append(found)
    close_run()
    required: _Required | None = None
    for part in sorted(parts, key=len):  # all of them: each alternative of one with each of the other
        if required is None:
            required = part
        elif len(required) * len(part) <= _MAX_ALTERNATIVES:
            required = frozenset(mine | theirs for mine in required for theirs in part)
    return required


def _secret_group(match: re.Match[str]) -> int:
    """The group holding the secret: the last captured one when it follows a key or a user name ("password is X",
    "user:X@"), else the whole match (a captured prefix such as "ghp" or "AKIA" is not the secret)."""
    captured = [index for index in range(1, (match.re.groups or 0) + 1) if match.group(index)]
    if captured and match.start(captured[-1]) > match.start() and len(match.group(captured[-1])) >= 4:
        return captured[-1]
    return 0


@cache
def _keyword_detector() -> keyword.KeywordDetector:
    return keyword.KeywordDetector()


def _span(text: str, start: int, end: int, kind: str) -> Span:
    if text.startswith("BEGIN", start) and "PRIVATE KEY" in text[start:end]:
        start = max(0, start - 5)
        tail = _PEM_END.search(text, end)
        end = tail.end() if tail else len(text)
    elif kind == "CREDENTIALS":  # https://user:password@host: the user goes with the password
        user = _URL_USER.search(text, max(0, start - 64), start)
        start = user.start() if user else start
    else:
        tail = _TOKEN_TAIL.match(text, end)
        end = tail.end() if tail else end
    return Span(start, end, kind, 1.0)
