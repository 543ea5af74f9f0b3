"""A large synthetic corpus built from real sentences, with injected duplicates and PII of known positions.

Sources (read in place, never copied into the repository):

- ACLSum, from the installed ``aclsum`` wheel: each paper's abstract, introduction and conclusion sentences, and its
  three aspect summaries (challenge, approach, outcome);
- SciTLDR-A, from ``/work/shared/data/scitldr-a`` (or ``$SCITLDR_DIR``): each abstract's sentences and its TLDRs.

Every base document is a run of up to four consecutive sentences from one paper (at most 45% of the document)
followed by sentences drawn at random from all papers (30-400 characters each), until a length drawn between
``min_chars`` and ``max_chars``; its summary is a real summary of the paper the run comes from. With about 32,000
sentences to draw from, two base documents share at most a few sentences, so none are near duplicates (checked on
20,000 documents: the highest word 5-gram Jaccard between two base documents is far below 0.8).

Injected, with ground truth:

- PII: a share of base documents gets one to three sentences such as "Correspondence should be addressed to
  <e-mail> at any time." (each kind at most once per document, so the words around a value locate it again after
  cleaning). Kinds: e-mail, US and international phone numbers, Luhn-valid card numbers, IPv4 (public) and IPv6
  (full and ``::``-compressed) addresses, US social security numbers and credentials in URLs
  (``https://user:password@host/...``, where ``user:password`` is the secret).
- Near duplicates: a copy of a base document (its PII sentences included) with edits of alphabetic words
  (substitution, deletion, insertion, swap of two adjacent words) outside the PII sentences, stopped before the
  word 5-gram Jaccard with the original falls below a target drawn from [0.85, 0.97]; the true Jaccard (over
  lower-cased ``\\w+`` words) is recorded. Half of them get a lightly edited summary (one word replaced), the rest
  the same summary. Each base document has at most one near copy, so every pair within a cluster is at least that
  similar.
- Exact duplicates: a copy, under a new id, of a base document or of a near copy.

Rows are shuffled, so a copy may come before its original. Every document is generated from its own seeded RNG,
so the corpus is built in one streaming pass with memory for a few integers per row, and the same arguments always
give the same bytes.

Ground truth (``truth.json``): ``clusters`` maps the id of every row with copies, and of every copy, to
``[kind, cluster, copy_of, jaccard]`` (kind ``base``, ``near`` or ``exact``; cluster is the id of the base row);
``pii`` lists ``[row_id, kind, value, left, right]`` for every injected value, copies included (``left``/``right``
are the template words around the value).

Command line: ``python -m bench.corpus --docs 50000 --seed 0 --out bench/.work/corpus``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import re
import string
import time
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from tuneforge.corpus import aclsum

WORK_DIR = Path(__file__).resolve().parent / ".work"
SCITLDR_DIR = Path(os.environ.get("SCITLDR_DIR", "/work/shared/data/scitldr-a"))
FORMAT_VERSION = 4  # 4: ACLSum papers in id order (tuneforge.corpus.aclsum.papers)
MIN_SENTENCE, MAX_SENTENCE = 30, 400
RUN_SHARE = 0.45  # the consecutive run from one paper fills at most this share of a document

# --------------------------------------------------------------------------------------------------------------
# Real text


@dataclass(frozen=True)
class Paper:
    id: str
    sentences: tuple[str, ...]
    summaries: tuple[str, ...]


@cache
def load_papers(scitldr_dir: Path = SCITLDR_DIR) -> tuple[Paper, ...]:
    papers: list[Paper] = []
    for paper in aclsum.papers():
        sentences = tuple(s for section in aclsum.SECTIONS for s in paper["sentences"].get(section, []) if s)
        summaries = tuple(paper["summary"][aspect] for aspect in aclsum.ASPECTS if paper["summary"].get(aspect))
        if sentences and summaries:
            papers.append(Paper(f"aclsum/{paper['id']}", sentences, summaries))
    if not (scitldr_dir / "train.jsonl").exists():
        raise FileNotFoundError(f"SciTLDR-A is not at {scitldr_dir} (set SCITLDR_DIR to its directory)")
    for split in ("train", "dev", "test"):
        with (scitldr_dir / f"{split}.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                paper = json.loads(line)
                sentences = tuple(s for s in paper["source"] if s.strip())
                summaries = tuple(t for t in paper["target"] if t.strip())
                if sentences and summaries:
                    papers.append(Paper(f"scitldr/{split}/{paper['paper_id']}", sentences, summaries))
    return tuple(papers)


@cache
def _sentence_pool() -> tuple[str, ...]:
    """Sentences of 30-400 characters: one very long sentence would make up most of a document, and two documents
    drawing it would be near duplicates."""
    return tuple(s for paper in load_papers() for s in paper.sentences if MIN_SENTENCE <= len(s) <= MAX_SENTENCE)


@cache
def _vocabulary() -> tuple[str, ...]:
    words = {w for s in _sentence_pool()[::7] for w in s.split() if w.isalpha() and 3 <= len(w) <= 12}
    return tuple(sorted(words))


# --------------------------------------------------------------------------------------------------------------
# Similarity (the ground truth's, independent of both systems: lower-cased \w+ words)

_WORD = re.compile(r"\w+")


def word_shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(left: set, right: set) -> float:
    union = len(left | right)
    return len(left & right) / union if union else 1.0


def word_jaccard(left: str, right: str) -> float:
    return jaccard(set(_WORD.findall(left.lower())), set(_WORD.findall(right.lower())))


# --------------------------------------------------------------------------------------------------------------
# PII values and the sentences that carry them

_FIRST = ("anna", "ben", "carla", "dmitri", "elena", "farid", "grace", "hiro", "ines", "jonas", "kemal", "li",
          "maria", "nikhil", "olga", "pedro", "qing", "rosa", "samir", "tomas", "uma", "viktor", "wen", "yusuf")
_LAST = ("schmidt", "nguyen", "garcia", "kowalski", "tanaka", "okafor", "rossi", "larsen", "silva", "cohen",
         "ivanova", "haddad", "kim", "murphy", "novak", "petrov", "santos", "weber", "zhang", "fischer")
_MAIL_DOMAINS = ("gmail.com", "cs.uni-stuttgart.de", "inf.ed.ac.uk", "mit.edu", "outlook.com", "lab.example-ai.org",
                 "research.company.co.jp", "yahoo.fr", "student.unimelb.edu.au", "protonmail.ch")
_HOSTS = ("data.nlp-lab.org", "files.example-uni.edu", "storage.acme-research.com", "git.lab42.io", "192.0.2.10")

TEMPLATES: dict[str, tuple[tuple[str, str], ...]] = {
    "EMAIL": (
        ("Correspondence should be addressed to ", " at any time."),
        ("For questions about the data, e-mail ", " and include the paper title."),
        ("The first author can be reached at ", " for details."),
    ),
    "PHONE_US": (
        ("For access to the annotation tool, call ", " on weekdays."),
        ("Our lab phone number in the United States is ", ", ask for the project lead."),
    ),
    "PHONE_INTL": (
        ("Participants could reach the study hotline abroad at ", " during the trial."),
        ("The European office takes calls at ", " between nine and five."),
    ),
    "CARD": (
        ("Annotators were paid with the prepaid card ", " issued by the university."),
        ("The cloud budget was charged to card number ", " every month."),
    ),
    "IPV4": (
        ("The annotation server runs at ", " behind a firewall."),
        ("All requests were sent from the address ", " during crawling."),
    ),
    "IPV6": (
        ("The mirror is reachable over IPv6 at ", " for reviewers."),
        ("Our crawler used the IPv6 address ", " in all experiments."),
    ),
    "SSN": (
        ("One participant accidentally typed the social security number ", " into the survey."),
        ("The scanned form listed SSN ", " next to the name."),
    ),
    "CREDENTIALS": (
        ("The raw data can be downloaded from ", " until the end of the year."),
        ("A private copy of the checkpoints is kept at ", " for the reviewers."),
    ),
}
PII_KINDS = tuple(TEMPLATES)


def luhn_check_digit(payload: str) -> str:
    total = 0
    for position, char in enumerate(reversed(payload)):
        value = int(char)
        if position % 2 == 0:  # every second digit from the right, counting the check digit as position 0
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str((10 - total % 10) % 10)


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def _pii_value(kind: str, rng: random.Random) -> tuple[str, str]:
    """(text placed in the document, the secret that must disappear): the same, except for credentials."""
    if kind == "EMAIL":
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        local = rng.choice((f"{first}.{last}", f"{first[0]}{last}{rng.randint(1, 99)}", f"{last}_{first}", first))
        value = f"{local}@{rng.choice(_MAIL_DOMAINS)}"
        return value, value
    if kind == "PHONE_US":
        area, exchange, line = rng.randint(201, 989), rng.randint(200, 999), _digits(rng, 4)
        value = rng.choice((f"({area}) {exchange}-{line}", f"{area}-{exchange}-{line}", f"{area}.{exchange}.{line}",
                            f"+1 {area} {exchange} {line}", f"+1-{area}-{exchange}-{line}"))
        return value, value
    if kind == "PHONE_INTL":
        value = rng.choice((
            f"+44 20 {_digits(rng, 4)} {_digits(rng, 4)}",
            f"+49 30 {_digits(rng, 8)}",
            f"+49 (0)89 {_digits(rng, 3)} {_digits(rng, 4)}",
            f"+33 1 {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}",
            f"+91 {rng.randint(70000, 99999)} {_digits(rng, 5)}",
            f"+81 3-{_digits(rng, 4)}-{_digits(rng, 4)}",
            f"+86 10 {_digits(rng, 4)} {_digits(rng, 4)}",
            f"+61 2 {_digits(rng, 4)} {_digits(rng, 4)}",
            f"+34 {rng.randint(600, 999)} {_digits(rng, 3)} {_digits(rng, 3)}",
        ))
        return value, value
    if kind == "CARD":
        prefix, length = rng.choice((("4", 16), (str(rng.randint(51, 55)), 16), (rng.choice(("34", "37")), 15)))
        payload = prefix + _digits(rng, length - len(prefix) - 1)
        number = payload + luhn_check_digit(payload)
        groups = [number[:4], number[4:10], number[10:]] if length == 15 else [number[i : i + 4] for i in (0, 4, 8, 12)]
        value = rng.choice((" ".join(groups), "-".join(groups), number))
        return value, value
    if kind == "IPV4":
        while True:
            address = ipaddress.IPv4Address(rng.getrandbits(32))
            if address.is_global:
                return str(address), str(address)
    if kind == "IPV6":
        groups = [f"{rng.choice((0x2001, 0x2400, 0x2600, 0x2a00, 0x2a03, 0x2c0f)) + rng.randint(0, 0xff):x}"]
        groups += [f"{rng.getrandbits(16):x}" for _ in range(7)]
        if rng.random() < 0.5:  # compressed: a run of zero groups written as ::
            start = rng.randint(2, 5)
            value = ":".join(groups[:start]) + "::" + ":".join(groups[start + rng.randint(1, 2) :])
        else:
            value = ":".join(groups)
        return value, value
    if kind == "SSN":
        area = rng.randint(1, 899)
        area = 665 if area == 666 else area
        value = f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
        return value, value
    if kind == "CREDENTIALS":
        user = rng.choice(_FIRST) + rng.choice(("", str(rng.randint(1, 99)), "_admin"))
        password = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(rng.randint(8, 14)))
        path = rng.choice(("corpus.tar.gz", "release/v2/data.zip", "ckpt/", "exports/annotations.jsonl"))
        return f"https://{user}:{password}@{rng.choice(_HOSTS)}/{path}", f"{user}:{password}"
    raise ValueError(kind)


# --------------------------------------------------------------------------------------------------------------
# Documents


@dataclass
class Draft:
    """A document as sentences (PII sentences flagged, so edits avoid them), its summary and its PII."""

    sentences: list[str]
    is_pii: list[bool]
    summary: str
    pii: list[tuple[str, str, str, str]]  # kind, secret, left, right

    @property
    def document(self) -> str:
        return " ".join(self.sentences)


@dataclass(frozen=True)
class CorpusSpec:
    docs: int
    seed: int = 0
    exact_rate: float = 0.04
    near_rate: float = 0.08
    pii_rate: float = 0.1
    min_chars: int = 400
    max_chars: int = 1100

    def key(self) -> str:
        return (f"v{FORMAT_VERSION}-n{self.docs}-s{self.seed}-e{self.exact_rate}-nd{self.near_rate}-p{self.pii_rate}"
                f"-c{self.min_chars}_{self.max_chars}")


def _rng(seed: int, *parts: int) -> random.Random:
    # A str seed goes through SHA-512: nearby integer seeds give correlated first draws in Mersenne Twister.
    return random.Random("/".join(map(str, (seed, *parts))))


def base_draft(spec: CorpusSpec, index: int) -> Draft:
    rng = _rng(spec.seed, 1, index)
    papers, pool = load_papers(), _sentence_pool()
    paper = papers[rng.randrange(len(papers))]
    target = rng.randint(spec.min_chars, spec.max_chars)
    # A run of consecutive sentences from the paper, at most RUN_SHARE of the document, so two documents built on
    # the same run still differ in most of their text; random sentences from all papers fill the rest.
    start = rng.randrange(len(paper.sentences))
    sentences: list[str] = []
    length = 0
    for sentence in paper.sentences[start : start + 4]:
        if not MIN_SENTENCE <= len(sentence) <= MAX_SENTENCE or length + len(sentence) > RUN_SHARE * target:
            break
        sentences.append(sentence)
        length += len(sentence) + 1
    while length < target:
        sentence = pool[rng.randrange(len(pool))]
        sentences.append(sentence)
        length += len(sentence) + 1
    is_pii = [False] * len(sentences)
    pii = []
    if rng.random() < spec.pii_rate:
        for kind in rng.sample(PII_KINDS, rng.randint(1, 3)):
            left, right = rng.choice(TEMPLATES[kind])
            shown, secret = _pii_value(kind, rng)
            position = rng.randint(0, len(sentences))
            sentences.insert(position, f"{left}{shown}{right}")
            is_pii.insert(position, True)
            pii.append((kind, secret, left, right))
    return Draft(sentences, is_pii, rng.choice(paper.summaries), pii)


def near_copy(spec: CorpusSpec, draft: Draft, index: int) -> tuple[Draft, float]:
    """``draft`` with word edits outside its PII sentences, down to a target 5-gram Jaccard; and the true Jaccard."""
    rng = _rng(spec.seed, 2, index)
    vocabulary = _vocabulary()
    target = rng.uniform(0.85, 0.97)
    original = word_shingles(draft.document)
    words = [s.split(" ") for s in draft.sentences]
    # Only alphabetic words are edited (punctuation tokens such as ACLSum's " , " are left alone), so the edits are
    # word edits under any tokenization.
    editable = [i for i, flag in enumerate(draft.is_pii) if not flag and sum(w.isalpha() for w in words[i]) > 3]
    similarity, fallback = 1.0, None
    for _ in range(200):
        if not editable:
            break
        trial = [list(w) for w in words]
        sentence = trial[rng.choice(editable)]
        position = rng.choice([i for i, word in enumerate(sentence) if word.isalpha()])
        operation = rng.random()
        if operation < 0.45:
            sentence[position] = rng.choice(vocabulary)
        elif operation < 0.65:
            del sentence[position]
        elif operation < 0.85:
            sentence.insert(position, rng.choice(vocabulary))
        elif position + 1 < len(sentence) and sentence[position + 1].isalpha():
            sentence[position], sentence[position + 1] = sentence[position + 1], sentence[position]
        else:
            sentence[position] = rng.choice(vocabulary)
        value = jaccard(original, word_shingles(" ".join(" ".join(w) for w in trial)))
        if value >= target:
            words, similarity = trial, value
        elif similarity < 1.0:
            break  # one edit too many: keep the previous version
        elif fallback is None or value > fallback[1]:
            fallback = (trial, value)  # the first edit alone went below the target: try another one
    if similarity == 1.0 and fallback is not None:
        words, similarity = fallback
    summary = draft.summary
    if rng.random() < 0.5:
        summary_words = summary.split(" ")
        summary_words[rng.randrange(len(summary_words))] = rng.choice(vocabulary)
        summary = " ".join(summary_words)
    copy = Draft([" ".join(w) for w in words], list(draft.is_pii), summary, list(draft.pii))
    return copy, similarity


# --------------------------------------------------------------------------------------------------------------
# The corpus


@dataclass
class CorpusInfo:
    spec: dict
    rows_path: str
    truth_path: str
    rows: int
    base: int
    near: int
    exact: int
    pii_values: int
    bytes: int
    seconds: float


def build_corpus(spec: CorpusSpec, out_dir: Path, with_truth: bool = True) -> CorpusInfo:
    """Write ``rows.jsonl`` (canonical rows) and ``truth.json`` under ``out_dir``; reuse them when ``out_dir`` holds
    a corpus built from the same spec."""
    meta_path = out_dir / "corpus.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        fresh = meta["spec"] == asdict(spec) and Path(meta["rows_path"]).exists()
        if fresh and (not with_truth or Path(meta["truth_path"]).exists()):
            return CorpusInfo(**meta)
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    n_near = round(spec.docs * spec.near_rate)
    n_exact = round(spec.docs * spec.exact_rate)
    n_base = spec.docs - n_near - n_exact
    if n_base <= n_near:
        raise ValueError("near_rate and exact_rate leave too few base documents")
    plan_rng = random.Random(spec.seed)
    near_originals = plan_rng.sample(range(n_base), n_near)
    # Sources 0..n_base-1 are base rows, n_base.. are near copies; an exact copy picks any source.
    exact_sources = [plan_rng.randrange(n_base + n_near) for _ in range(n_exact)]
    order = list(range(spec.docs))  # entries: base i, then near j (n_base + j), then exact k (n_base + n_near + k)
    plan_rng.shuffle(order)
    position = [0] * spec.docs
    for pos, entry in enumerate(order):
        position[entry] = pos

    def row_id(entry: int) -> str:
        return f"doc-{position[entry]:07d}"

    has_copies = set(near_originals) | {s if s < n_base else near_originals[s - n_base] for s in exact_sources}

    def near_draft(j: int) -> tuple[Draft, float]:
        return near_copy(spec, base_draft(spec, near_originals[j]), j)

    clusters: dict[str, list] = {}
    pii_truth: list[list[str]] = []
    rows_path = out_dir / "rows.jsonl"
    written = 0
    with rows_path.open("w", encoding="utf-8") as handle:
        for entry in order:
            rid = row_id(entry)
            if entry < n_base:
                draft = base_draft(spec, entry)
                if entry in has_copies:
                    clusters[rid] = ["base", rid, None, 1.0]
            elif entry < n_base + n_near:
                j = entry - n_base
                draft, similarity = near_draft(j)
                original = near_originals[j]
                clusters[rid] = ["near", row_id(original), row_id(original), round(similarity, 4)]
            else:
                source = exact_sources[entry - n_base - n_near]
                if source < n_base:
                    draft, base = base_draft(spec, source), source
                    similarity = 1.0
                else:
                    draft, similarity = near_draft(source - n_base)
                    base = near_originals[source - n_base]
                clusters[rid] = ["exact", row_id(base), row_id(source), 1.0]
            for kind, secret, left, right in draft.pii:
                pii_truth.append([rid, kind, secret, left, right])
            row = {"id": rid, "source": "bench", "group": rid, "document": draft.document, "summary": draft.summary,
                   "references": [], "language": None}
            line = json.dumps(row, ensure_ascii=False) + "\n"
            handle.write(line)
            written += len(line.encode("utf-8"))
    truth_path = out_dir / "truth.json"
    if with_truth:
        truth = {"spec": asdict(spec), "clusters": clusters, "pii": pii_truth}
        truth_path.write_text(json.dumps(truth, ensure_ascii=False))
    info = CorpusInfo(
        spec=asdict(spec), rows_path=str(rows_path), truth_path=str(truth_path), rows=spec.docs, base=n_base,
        near=n_near, exact=n_exact, pii_values=len(pii_truth), bytes=written,
        seconds=round(time.perf_counter() - started, 1),
    )
    meta_path.write_text(json.dumps(asdict(info), indent=2))
    return info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exact-rate", type=float, default=CorpusSpec.exact_rate)
    parser.add_argument("--near-rate", type=float, default=CorpusSpec.near_rate)
    parser.add_argument("--pii-rate", type=float, default=CorpusSpec.pii_rate)
    parser.add_argument("--out", type=Path, default=None, help="default: bench/.work/corpus-<spec>")
    args = parser.parse_args(argv)
    spec = CorpusSpec(args.docs, args.seed, args.exact_rate, args.near_rate, args.pii_rate)
    info = build_corpus(spec, args.out or WORK_DIR / f"corpus-{spec.key()}")
    print(json.dumps(asdict(info), indent=2))


if __name__ == "__main__":
    main()
