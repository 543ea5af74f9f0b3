"""Three raw sources in shapes the project has never trained on, each with only a field mapping (and an
instruction) in its ``source.yaml``, for ``bench/new_corpora.py`` ("Your corpus, not ours").

``python -m bench.corpus_shapes OUT_DIR [--seed 0] [--shapes NAME...]`` writes ``OUT_DIR/<shape>/``: data files and
a ``source.yaml``. The same seed always gives the same bytes (gzip without a timestamp, one seeded
``random.Random`` per shape).

``short-questions`` (``questions.jsonl``; ``{"qid", "post": {"body", "title"}, "origin"}``, dotted paths)
    A short text and its title, as a Q&A site exports a question body and its one-line title. Built from real
    abstracts: SciTLDR-A (``$SCITLDR_DIR``, default ``../shared/data/scitldr-a`` beside the checkout, all splits)
    and the ACLSum papers of the ``aclsum`` wheel. The summary is the paper's title (titles of 5-15 words only);
    the document is the run of one to three consecutive well-formed abstract sentences, of a length drawn from a
    triangular distribution over 20-80 words (mode 40), that shares the most words with the title, so the title is
    derivable from it. About 5% of rows are instead one well-formed sentence of 8-15 words (and longer than the
    title). 1,000 rows from a seeded shuffle of the papers (seed 0: 932 SciTLDR-A, 68 ACLSum; SciTLDR-A holds
    two papers twice, one under a shortened title, so cleaning finds an exact and a near duplicate). Seed 0:
    documents median 46 words (9-78; 31 rows of 9-15), titles median 8 (5-15). Without SciTLDR-A only ACLSum is
    there: 232 rows, and the builder says so; the other two shapes do not need it.
``dialogues`` (``part-a.jsonl`` and ``part-b.csv``, ``;``-delimited Latin-1, declared in source.yaml)
    Synthetic doctor-patient conversations (no public text has this shape offline), one turn per line
    ("Doctor: ..." / "Patient: ..."), generated from slots: the complaint (12 kinds), its duration, severity, an
    associated symptom (a fever in °C: a Latin-1 character in the CSV), medication tried, allergies, history, the
    doctor's assessment and plan, a test and a follow-up, each with a few phrasings; each optional exchange
    appears in 35% of conversations. The note states only what the conversation covered, in one of four styles:
    a terse label ("Headache."), one line, a narrative paragraph, or a SOAP note with 0-5 routine closing lines,
    so its length varies from 1 to about 110 words (and some SOAP notes are longer than a short conversation).
    2% are two-turn exchanges (a refill, a test result). Each file numbers its 650 encounters from 0, as separate
    exports do, so ``encounter_id`` values (mapped as the ``id``) overlap across files: ingestion reads part-b's
    rows as their own records, with ids qualified by the file (``<id>@part-b.csv``). Five records of part-a and
    three of part-b are repeated exactly; routine two-turn exchanges also repeat by chance, so ingestion drops 15
    exact repeats (seed 0). 1,308 records. Seed 0: conversations median 73 words (20-140; 5th-95th percentile
    43-106), notes median 17 (1-106).
``bills`` (``part-0.jsonl.gz``; ``{"bill": {"number", "title", "text"}, "summary"}``, dotted paths)
    Long documents and a paragraph summary, the BillSum shape, built from the ACLSum papers: the document is the
    introduction and the conclusion under two headings, separated by blank lines (sentences detokenized, the PDF
    extraction's debris such as footnote marks kept), the summary is the paper's abstract. 107 papers have
    700-1,600 words of introduction and conclusion and a 60-180-word abstract; a seeded 100 are kept. Seed 0:
    documents median 873 words (704-1,593), summaries median 121 (62-178). In SmolLM2's tokens documents are
    897-2,094 (median 1,198) and summaries 78-267: the demo profile's 384-token prompt shows the model about the
    first 29% of a median document.

The table printed at the end gives, per shape, the records written and the median, minimum and maximum words
(whitespace-separated, as cleaning counts them) of documents and summaries.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import re
import shutil
import statistics
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from random import Random

import yaml

from tuneforge.corpus import aclsum

REPO = Path(__file__).resolve().parents[1]
SCITLDR_DIR = Path(os.environ.get("SCITLDR_DIR", REPO.parent / "shared" / "data" / "scitldr-a"))

Pair = tuple[str, str]  # (document, summary) of one written record


@dataclass
class Built:
    """What one shape's builder wrote: every record's texts (repeats included), and anything worth saying."""

    pairs: list[Pair]
    note: str = ""


def words(text: str) -> int:
    return len(text.split())


_SPACE_BEFORE = re.compile(r" ([,.;:!?%)\]]|'s\b|n't\b)")
_SPACE_AFTER = re.compile(r"([(\[]) ")


def detokenize(sentence: str) -> str:
    """ACLSum's tokenized sentences ("a model ( BERT ) , which") as plain text ("a model (BERT), which")."""
    return _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", sentence)).strip()


# --- writing --------------------------------------------------------------------------------------------------


def write_jsonl(path: Path, records: Iterable[dict]) -> None:
    data = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)


def write_csv(path: Path, records: list[dict], delimiter: str, encoding: str) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]), delimiter=delimiter, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(records)
    path.write_bytes(buffer.getvalue().encode(encoding))


def write_source_yaml(source_dir: Path, config: dict, comment: str = "") -> None:
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    (source_dir / "source.yaml").write_text(header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def with_repeats(records: list[dict], count: int, rng: Random) -> list[dict]:
    """``records`` with ``count`` of them repeated exactly, each copy somewhere after its original."""
    out = list(records)
    for index in sorted(rng.sample(range(len(records)), count), reverse=True):
        out.insert(rng.randint(index + 1, len(out)), dict(records[index]))
    return out


# --- short-questions: a short abstract passage -> the paper's title -------------------------------------------


@dataclass(frozen=True)
class Abstract:
    origin: str
    title: str
    sentences: tuple[str, ...]


QUESTION_ROWS = 1000
SHORT_SHARE = 0.05  # rows whose document is one sentence of 8-15 words
TITLE_WORDS = (5, 15)
PASSAGE_WORDS = (20, 80)
SHORT_WORDS = (8, 15)
_WORD = re.compile(r"[a-z0-9]+")


def abstracts() -> tuple[list[Abstract], str]:
    """Every abstract with a title, ACLSum's and (when it is there) SciTLDR-A's; and a note when it is not."""
    found = [Abstract("aclsum", paper["title"], tuple(detokenize(s) for s in paper["sentences"]["abstract"]))
             for paper in aclsum.papers()]
    if not (SCITLDR_DIR / "train.jsonl").exists():
        return found, f"SciTLDR-A not found at {SCITLDR_DIR} (set SCITLDR_DIR): built from the ACLSum papers only"
    for split in ("train", "dev", "test"):
        with (SCITLDR_DIR / f"{split}.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                paper = json.loads(line)
                found.append(Abstract("scitldr", paper["title"], tuple(s.strip() for s in paper["source"])))
    return found, ""


def _content_words(text: str) -> set[str]:
    return {word for word in _WORD.findall(text.lower()) if len(word) > 3}


def well_formed(sentence: str) -> bool:
    """A whole sentence: a capital first, a full stop (or ? !) last, parentheses closed; SciTLDR's sentence
    splitting leaves some fragments ("As most algorithms are stochastic (e.g.,")."""
    return sentence[:1].isupper() and sentence[-1:] in ".?!" and sentence.count("(") == sentence.count(")")


def passages(sentences: tuple[str, ...], low: int, high: int, max_run: int) -> Iterator[str]:
    """Runs of 1..``max_run`` consecutive well-formed sentences with ``low``..``high`` words."""
    for start in range(len(sentences)):
        for end in range(start + 1, min(start + max_run, len(sentences)) + 1):
            if not well_formed(sentences[end - 1]):
                break
            text = " ".join(sentences[start:end])
            if low <= words(text) <= high:
                yield text


def title_passage(abstract: Abstract, rng: Random) -> str | None:
    """A passage of the abstract, of a drawn length and longer than the title, sharing the most words with it."""
    if rng.random() < SHORT_SHARE:
        low = max(SHORT_WORDS[0], words(abstract.title) + 2)
        short = list(passages(abstract.sentences, low, SHORT_WORDS[1], max_run=1))
        if short:
            return closest_to_title(short, abstract.title, SHORT_WORDS[0])
    target = round(rng.triangular(*PASSAGE_WORDS, 40))
    return closest_to_title(list(passages(abstract.sentences, *PASSAGE_WORDS, max_run=3)), abstract.title, target)


def closest_to_title(candidates: list[str], title: str, target: int) -> str | None:
    """Among the candidates within 10 words of ``target`` (or all), the one sharing most words with the title."""
    near = [text for text in candidates if abs(words(text) - target) <= 10] or candidates
    shared = _content_words(title)
    return max(near, key=lambda text: (len(shared & _content_words(text)), -abs(words(text) - target)), default=None)


def build_short_questions(source_dir: Path, rng: Random) -> Built:
    pool, note = abstracts()
    pool = [a for a in pool if TITLE_WORDS[0] <= words(a.title) <= TITLE_WORDS[1]]
    rng.shuffle(pool)
    records: list[dict] = []
    for abstract in pool:
        body = title_passage(abstract, rng)
        if body is not None:
            records.append({"qid": len(records), "post": {"body": body, "title": abstract.title},
                            "origin": abstract.origin})
        if len(records) == QUESTION_ROWS:
            break
    write_jsonl(source_dir / "questions.jsonl", records)
    write_source_yaml(source_dir, {
        "fields": {"document": "post.body", "summary": "post.title", "id": "qid"},
        "instruction": "Write a short title for this text.",
    })
    return Built([(r["post"]["body"], r["post"]["title"]) for r in records], note)


# --- dialogues: a doctor-patient conversation -> the clinician's note -----------------------------------------


@dataclass(frozen=True)
class Complaint:
    said: str  # as the patient says it
    term: str  # as the note records it
    assessment: str
    treatment: str
    advice: str
    test: str


COMPLAINTS = (
    Complaint("a headache that won't go away", "headache", "a tension-type headache", "ibuprofen 400 mg as needed",
              "drink more water and keep regular sleep hours", "a blood pressure check"),
    Complaint("a sore throat", "sore throat", "a viral throat infection", "throat lozenges and paracetamol",
              "rest your voice for a few days", "a throat swab"),
    Complaint("a cough that keeps me up at night", "night cough", "a post-viral cough",
              "honey and a cough syrup at night", "avoid smoky rooms", "a chest X-ray"),
    Complaint("pain in my lower back", "low back pain", "a muscle strain", "naproxen for five days",
              "do gentle stretching and avoid heavy lifting", "no imaging for now"),
    Complaint("stomach pain after I eat", "epigastric pain", "gastritis", "omeprazole 20 mg daily",
              "avoid spicy food and alcohol", "a blood test"),
    Complaint("an itchy rash on my arms", "itchy rash on both arms", "contact dermatitis",
              "hydrocortisone cream twice a day", "stop using the new soap", "a patch test"),
    Complaint("trouble falling asleep", "insomnia", "primary insomnia", "a short course of melatonin",
              "keep screens off an hour before bed", "a sleep diary"),
    Complaint("burning when I pee", "dysuria", "a urinary tract infection", "nitrofurantoin for five days",
              "drink plenty of fluids", "a urine test"),
    Complaint("dizziness when I stand up", "orthostatic dizziness", "dehydration", "oral rehydration salts",
              "stand up slowly", "a blood test"),
    Complaint("pain in my left ear", "left ear pain", "an outer ear infection", "antibiotic ear drops",
              "keep the ear dry", "no tests for now"),
    Complaint("a swollen knee after football", "right knee swelling", "a knee sprain", "ice, compression and rest",
              "keep the leg raised", "an X-ray"),
    Complaint("heartburn most nights", "reflux", "acid reflux", "an antacid after meals",
              "avoid eating late", "no tests for now"),
)
DURATIONS = (("since yesterday", "1 day"), ("for two days", "2 days"), ("for about three days", "3 days"),
             ("for a week", "1 week"), ("for two weeks", "2 weeks"), ("for about a month", "1 month"),
             ("since last Monday", "since Monday"))
MEDICATIONS = ("paracetamol", "ibuprofen", "an antihistamine", "antacids")
ALLERGIES = ("penicillin", "sulfa drugs", "aspirin", "latex")
HISTORY = ("asthma", "type 2 diabetes", "high blood pressure", "migraines")
FOLLOW_UPS = ("in one week", "in two weeks", "in a few days", "in a month")
REFILLS = ("inhaler", "blood pressure tablets", "metformin", "thyroid medication")
SUPPLIES = ("one", "two", "three", "six")
TESTS = ("blood test", "cholesterol test", "urine test", "thyroid test", "iron test")
RESULTS = (("they all came back normal, so nothing needs to change", "normal"),
           ("one value is slightly high, so we will repeat it in three months", "slightly raised, repeat in 3 months"))
OPENINGS = ("What brings you in today?", "How can I help you today?", "Hello, what seems to be the problem?")
COMPLAINT_ANSWERS = ("I've had {said}.", "I've been having {said}.", "Hi doctor, I have {said}.")
THANKS = ("Okay, thank you.", "Alright, that sounds good.", "Thanks, doctor.", "Okay, I'll do that.")
CLOSING_LINES = (
    "Red-flag symptoms and when to seek urgent care were discussed with the patient.",
    "Patient verbalized understanding of the diagnosis and agrees with the plan.",
    "Return precautions were given verbally during the consultation.",
    "Advised to attend the emergency department if symptoms worsen suddenly.",
    "All questions were answered to the patient's satisfaction.",
    "Written information about the condition was offered to the patient.",
    "No safeguarding concerns were identified during this consultation.",
)
OPTIONAL_SHARE = 0.35  # each optional exchange of a consultation


@dataclass(frozen=True)
class Fact:
    """What the note may say about one slot of the conversation: a short phrase and a full sentence."""

    short: str
    sentence: str


@dataclass
class Encounter:
    """One conversation's turns and the facts its note may state (only those the conversation covered)."""

    complaint: Complaint
    turns: list[tuple[str, str]]  # (speaker, text)
    facts: dict[str, Fact]


def _exchange(encounter: Encounter, question: str, answer: str, slot: str = "", fact: Fact | None = None) -> None:
    encounter.turns += [("Doctor", question), ("Patient", answer)]
    if fact:
        encounter.facts[slot] = fact


def _history_exchanges(encounter: Encounter, rng: Random) -> list[Callable[[], None]]:
    """The optional history-taking exchanges, in the order a consultation takes them."""
    said, term = rng.choice(DURATIONS)
    severity = rng.randint(3, 9)
    fever = f"{rng.choice(range(375, 395)) / 10:.1f}°C"
    medication, allergy, history = rng.choice(MEDICATIONS), rng.choice(ALLERGIES), rng.choice(HISTORY)
    e = encounter
    return [
        lambda: _exchange(e, rng.choice(("How long has this been going on?", "When did it start?")),
                          rng.choice((f"I've had it {said}.", f"{said[0].upper()}{said[1:]}, more or less.")),
                          "duration", Fact(term, f"Symptoms present {said}.")),
        lambda: _exchange(e, "How bad is it, from one to ten?",
                          rng.choice((f"About a {severity}.", f"I'd say {severity} out of ten.")),
                          "severity", Fact(f"severity {severity}/10", f"Rates it {severity} out of 10.")),
        lambda: _exchange(e, rng.choice(("Any fever or other symptoms?", "Anything else, like a fever?")), *rng.choice((
            (f"Yes, I had a fever last night, {fever}.", "associated",
             Fact(f"fever {fever}", f"Reports a fever of {fever} last night.")),
            ("I feel a bit sick to my stomach.", "associated", Fact("nausea", "Also reports some nausea.")),
            ("No, nothing else.", "associated", Fact("no other symptoms", "Denies other symptoms."))))),
        lambda: _exchange(e, rng.choice(("Have you taken anything for it?", "Did you try any medicine?")), *rng.choice((
            (f"I took some {medication} but it didn't help much.", "medication",
             Fact(f"{medication} without relief", f"Has taken {medication} with little relief.")),
            ("I haven't taken anything yet.", "medication",
             Fact("no medication tried", "Has not taken any medication yet."))))),
        lambda: _exchange(e, rng.choice(("Do you have any allergies?", "Are you allergic to any medicines?")),
                          *rng.choice(((f"I'm allergic to {allergy}.", "allergy",
                                        Fact(f"allergic to {allergy}", f"Allergic to {allergy}.")),
                                       ("No allergies that I know of.", "allergy",
                                        Fact("no known allergies", "No known drug allergies."))))),
        lambda: _exchange(e, rng.choice(("Any other health problems?", "Do you have any medical conditions?")),
                          *rng.choice(((f"I have {history}.", "history",
                                        Fact(f"history of {history}", f"Past medical history of {history}.")),
                                       ("No, I'm usually healthy.", "history",
                                        Fact("no significant history", "No significant past medical history."))))),
    ]


def _plan_exchanges(encounter: Encounter, rng: Random) -> list[Callable[[], None]]:
    c, e = encounter.complaint, encounter
    follow_up = rng.choice(FOLLOW_UPS)
    return [
        lambda: _exchange(e, f"I'd also like to arrange {c.test}.", rng.choice(("Okay.", "Sure, no problem.")),
                          "test", Fact(f"{c.test} arranged", f"{_capital(c.test)} arranged.")),
        lambda: _exchange(e, f"Come back {follow_up} if it isn't better.", rng.choice(THANKS),
                          "follow_up", Fact(f"review {follow_up}", f"Review {follow_up} if not improving.")),
    ]


def consultation(rng: Random) -> Encounter:
    """A conversation about one complaint: the opening and the plan always, each other exchange now and then."""
    complaint = rng.choice(COMPLAINTS)
    encounter = Encounter(complaint, [], {})
    _exchange(encounter, rng.choice(OPENINGS), rng.choice(COMPLAINT_ANSWERS).format(said=complaint.said))
    for exchange in _history_exchanges(encounter, rng):
        if rng.random() < OPTIONAL_SHARE:
            exchange()
    advice = complaint.advice if rng.random() < 0.5 else ""
    plan = f"It looks like {complaint.assessment}. I suggest {complaint.treatment}."
    _exchange(encounter, plan + (f" You should also {advice}." if advice else ""), rng.choice(THANKS), "plan",
              Fact(complaint.treatment + (f"; {advice}" if advice else ""),
                   f"{_capital(complaint.treatment)}." + (f" Advised to {advice}." if advice else "")))
    for exchange in _plan_exchanges(encounter, rng):
        if rng.random() < OPTIONAL_SHARE:
            exchange()
    return encounter


def _capital(text: str) -> str:
    return text[0].upper() + text[1:]


HISTORY_SLOTS = ("severity", "associated", "medication", "allergy", "history")
PLAN_SLOTS = ("plan", "test", "follow_up")


def note(encounter: Encounter, rng: Random) -> str:
    """The clinician's note, in one of four styles of very different lengths."""
    c, facts = encounter.complaint, encounter.facts
    duration = f" for {facts['duration'].short}" if "duration" in facts else ""
    history = [facts[slot] for slot in HISTORY_SLOTS if slot in facts]
    plan = [facts[slot] for slot in PLAN_SLOTS if slot in facts]
    style = rng.choices(("terse", "line", "narrative", "soap"), weights=(15, 35, 30, 20))[0]
    if style == "terse":
        return f"{_capital(c.term)}{duration if rng.random() < 0.5 else ''}."
    if style == "line":
        return f"{_capital(c.term)}{duration}; {facts['plan'].short}."
    if style == "narrative":
        return " ".join([f"Patient presents with {c.term}{duration}.", *(f"{_capital(f.short)}." for f in history),
                         f"Assessment: {c.assessment}.", f"Plan: {'; '.join(f.short for f in plan)}."])
    return " ".join([f"S: {_capital(c.term)}{duration}.", *(f.sentence for f in history),
                     "O: Vitals within normal limits.", f"A: {_capital(c.assessment)}.",
                     "P:", *(f.sentence for f in plan), *rng.sample(CLOSING_LINES, rng.randint(0, 5))])


def quick_exchange(rng: Random) -> tuple[list[tuple[str, str]], str]:
    """A two-turn exchange (a refill, a test result) and its one-line note."""
    if rng.random() < 0.5:
        item, months = rng.choice(REFILLS), rng.choice(SUPPLIES)
        turns = [("Patient", f"Hi, I just need a refill of my {item}."),
                 ("Doctor", f"No problem, I'll send a {months}-month supply of your {item} to the pharmacy.")]
        return turns, rng.choice((f"Refill: {item}, {months} months.", f"{_capital(item)} refilled."))
    test, (result, outcome) = rng.choice(TESTS), rng.choice(RESULTS)
    turns = [("Patient", f"Are my {test} results back yet?"), ("Doctor", f"Yes, {result}.")]
    return turns, rng.choice((f"{_capital(test)} results: {outcome}.", f"{_capital(test)}: {outcome}."))


def transcript(turns: list[tuple[str, str]]) -> str:
    return "\n".join(f"{speaker}: {text}" for speaker, text in turns)


DIALOGUES_PER_FILE = 650
QUICK_SHARE = 0.02
DIALOGUE_CSV = {"delimiter": ";", "encoding": "latin-1"}


def dialogue_records(count: int, rng: Random) -> list[dict]:
    """``count`` encounters numbered from 0, as one export numbers them."""
    records = []
    for number in range(count):
        if rng.random() < QUICK_SHARE:
            turns, text = quick_exchange(rng)
        else:
            encounter = consultation(rng)
            turns, text = encounter.turns, note(encounter, rng)
        records.append({"encounter_id": number, "transcript": transcript(turns), "note": text})
    return records


def build_dialogues(source_dir: Path, rng: Random) -> Built:
    part_a = with_repeats(dialogue_records(DIALOGUES_PER_FILE, rng), 5, rng)
    part_b = with_repeats(dialogue_records(DIALOGUES_PER_FILE, rng), 3, rng)
    write_jsonl(source_dir / "part-a.jsonl", part_a)
    write_csv(source_dir / "part-b.csv", part_b, **DIALOGUE_CSV)
    write_source_yaml(source_dir, {
        "fields": {"document": "transcript", "summary": "note", "id": "encounter_id"},
        "csv": DIALOGUE_CSV,
        "instruction": "Write the clinician's note for this doctor-patient conversation.",
    })
    return Built([(r["transcript"], r["note"]) for r in part_a + part_b])


# --- bills: a long document -> a paragraph summary ------------------------------------------------------------


BILL_ROWS = 100
BILL_DOCUMENT_WORDS = (700, 1600)
BILL_SUMMARY_WORDS = (60, 180)


def paper_sections(paper: dict) -> tuple[str, str]:
    """The introduction and conclusion as one headed document, and the abstract."""
    text = {section: " ".join(detokenize(s) for s in paper["sentences"][section]) for section in aclsum.SECTIONS}
    return f"1 Introduction\n\n{text['introduction']}\n\n2 Conclusion\n\n{text['conclusion']}", text["abstract"]


def build_bills(source_dir: Path, rng: Random) -> Built:
    records = []
    for paper in aclsum.papers():
        document, abstract = paper_sections(paper)
        if (BILL_DOCUMENT_WORDS[0] <= words(document) - 4 <= BILL_DOCUMENT_WORDS[1]  # 4 words of headings
                and BILL_SUMMARY_WORDS[0] <= words(abstract) <= BILL_SUMMARY_WORDS[1]):
            records.append({"bill": {"number": paper["id"], "title": paper["title"], "text": document},
                            "summary": abstract})
    records = sorted(rng.sample(records, min(BILL_ROWS, len(records))), key=lambda r: r["bill"]["number"])
    write_jsonl(source_dir / "part-0.jsonl.gz", records)
    write_source_yaml(source_dir, {
        "fields": {"document": "bill.text", "summary": "summary", "id": "bill.number"},
        "instruction": "Summarize this document in one paragraph.",
    })
    note = f"only {len(records)} documents fit the bounds" if len(records) < BILL_ROWS else ""
    return Built([(r["bill"]["text"], r["summary"]) for r in records], note)


# --- command line ---------------------------------------------------------------------------------------------


SHAPES: dict[str, Callable[[Path, Random], Built]] = {
    "short-questions": build_short_questions,
    "dialogues": build_dialogues,
    "bills": build_bills,
}


def build_shape(name: str, source_dir: Path, seed: int = 0) -> Built:
    """Write shape ``name`` into ``source_dir`` (emptied first) with its own seeded generator."""
    if source_dir.exists():
        shutil.rmtree(source_dir)
    source_dir.mkdir(parents=True)
    return SHAPES[name](source_dir, Random(f"{seed}:{name}"))


def length_stats(counts: list[int]) -> str:
    return f"{statistics.median(counts):g} ({min(counts)}-{max(counts)})"


def stats_table(built: dict[str, Built]) -> str:
    lines = ["| shape | records | document words: median (min-max) | summary words: median (min-max) |",
             "|---|---:|---|---|"]
    for name, result in built.items():
        documents, summaries = zip(*result.pairs, strict=True)
        lines.append(f"| {name} | {len(result.pairs)} | {length_stats([words(d) for d in documents])} | "
                     f"{length_stats([words(s) for s in summaries])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="each shape is written to OUT_DIR/<shape>/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    args = parser.parse_args(argv)
    built = {name: build_shape(name, args.out_dir / name, args.seed) for name in args.shapes}
    print(stats_table(built))
    for name, result in built.items():
        if result.note:
            print(f"note: {name}: {result.note}")


if __name__ == "__main__":
    main()
