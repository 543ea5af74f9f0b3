"""PII and secrets: the redactor's recall on values it was not written for, its precision on real clean text, and
its cost.

*Recall.* An evaluation set is built in memory, the same for the same ``--seed``: short texts in running prose
(support tickets, clinical notes, chats, letters, config snippets, log lines), written here, each embedding one or
more values of a known kind at known offsets. Values come from Faker's locales (names, postal addresses, IBANs,
national identifiers, phone numbers, card numbers, e-mail and IP addresses, dates of birth), from the published
formats of identifiers Faker lacks or gets wrong (UK National Insurance and NHS numbers, German tax ids, Australian
tax file numbers, passports), and from the documented shapes of credentials (AWS, GitHub, Slack, Stripe, Google
and OpenAI keys, HMAC-signed JWTs, PEM private keys, passwords in config lines and in URLs). Every identifier with
a python-stdnum validator is checked by it and invalid draws are dropped (cards: Luhn; IBANs: ISO 13616); phone
numbers must be valid in their region's numbering plan (phonenumbers) and are written in one of several real
styles (as Faker writes them, E.164, international, national with its trunk 0, 00 prefix, dots, dashes, brackets).
Names and addresses come in templates with a cue ("Patient: ...", "Dear ...", "lives at ...") and in templates
with none ("... will collect the parcel on Friday."), reported apart; they also appear beside other values
("Beneficiary: <name>, IBAN: ..."). The set shares nothing with ``bench/corpus.py``, whose injected values the old
patterns were tuned on, and its templates were written without reference to the detectors' cue lists.

A value counts as *redacted* when no piece of it (a run of four or more letters or digits; the whole value when it
has none) is left in the output beyond what the rest of the text already holds: ``+44 20 7946 0958`` becomes
``[PHONE] 0958`` is a miss. The plain criterion, the exact value string no longer appears, is reported beside it.
The placeholder that replaced a value is the kind of the redactor's span(s) over it; a value replaced under another
kind (a passport number as NATIONAL_ID) still counts as redacted. Kinds are pooled into two groups, structured
identifiers and secrets (goal: recall >= 0.98) and names and addresses (goal: >= 0.9).

*Precision.* Real clean text: ACLSum papers (document: abstract, introduction and conclusion; its three aspect
summaries) and SciTLDR-A papers (document: the abstract; its TLDRs), read as ``bench/corpus.py`` reads them. Each
paper is a row whose texts are redacted together, as the cleaning step does with a row's fields. Reported: the
share of rows changed per corpus (goal: <= 1%) and examples of what was replaced. The papers are not free of
personal data (authors, cited people, public figures), so each find is also looked up in ``bench/pii_clean_finds.json``,
every find of the ``cued`` and ``pairs`` scopes judged by reading it in its text: the share of rows holding a find
that is not personal data (a term, product or dataset) is the false-find rate; finds not judged there are counted
apart and shown.

*Cost.* Time per clean row for each NER mode (median of ``--repeat`` passes, after a pass that loads everything),
and what the NER pre-filter sends to the model (rows, sentences, share of characters), counted by wrapping
``tuneforge.pii.names.candidate_sentences`` for the duration of the run.

Command line: ``python -m bench.pii [--seed 0] [--per-kind 60] [--ner cued all off] [--clean-rows 2000]
[--repeat 3]``. Tables are printed as markdown; everything goes to ``bench/.work/pii/results.json``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import ipaddress
import json
import os
import platform
import random
import re
import statistics
import string
import sys
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from itertools import zip_longest
from pathlib import Path
from types import ModuleType
from typing import TypeVar

import phonenumbers
from faker import Faker
from stdnum import iban, luhn
from stdnum.au import tfn
from stdnum.be import nn
from stdnum.br import cpf
from stdnum.ca import sin
from stdnum.ch import ssn as ahv
from stdnum.cn import ric
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fi import hetu
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.in_ import aadhaar, pan
from stdnum.it import codicefiscale
from stdnum.kr import rrn
from stdnum.mx import curp
from stdnum.nl import bsn
from stdnum.no import fodselsnummer
from stdnum.pl import pesel
from stdnum.se import personnummer
from stdnum.tr import tckimlik
from stdnum.us import ssn

from bench.corpus import SCITLDR_DIR, load_papers
from tuneforge.pii import names
from tuneforge.pii.kinds import Span
from tuneforge.pii.redactor import Redactor, redactor_for
from tuneforge.profiles import PiiConfig

T = TypeVar("T")
RESULTS = Path(__file__).resolve().parent / ".work" / "pii" / "results.json"
GROUPS = {
    "structured identifiers and secrets": ("EMAIL", "PHONE", "CARD", "IBAN", "NATIONAL_ID", "PASSPORT", "IP",
                                           "CREDENTIALS", "SECRET", "DATE_OF_BIRTH"),
    "names and addresses": ("PERSON", "ADDRESS"),
}
KIND_ORDER = tuple(kind for kinds in GROUPS.values() for kind in kinds)
RECALL_GOALS = {"structured identifiers and secrets": 0.98, "names and addresses": 0.9}
CHANGED_ROWS_GOAL = 0.01
MISSES_SHOWN = 5
CHANGES_SHOWN = 10
JUDGED_FINDS = Path(__file__).resolve().parent / "pii_clean_finds.json"

# --------------------------------------------------------------------------------------------------------------
# Templates: "{v}" is the value, "{term}" what people call it ("NHS number", "Stripe"), "{KIND}" another value.

Templates = tuple[tuple[str, str], ...]  # (family, template)


def _plain(*templates: str) -> Templates:
    return tuple(("", template) for template in templates)


def _cued_and_bare(cued: Sequence[str], bare: Sequence[str]) -> Templates:
    """Both families, interleaved, so that every stretch of the cycle through them holds both."""
    tagged = zip_longest([("cued", template) for template in cued], [("bare", template) for template in bare])
    return tuple(pair for pairs in tagged for pair in pairs if pair is not None)


EMAIL_TEMPLATES = _plain(
    "Please send the signed contract to {v} by Thursday.",
    "You can reach me at {v} if anything changes before the move.",
    "From: {PERSON} <{v}>\nSubject: Re: invoice 2231\n\nSee the corrected totals attached.",
    "cc {v} on the next update, she owns the migration now.",
    "Login fails for {v} since the password reset on Monday.",
    "2024-03-11T09:14:55Z INFO auth: session created for {v} (mfa=ok)",
    "Unsubscribe request received from {v}; removed from the weekly digest.",
    "The bounce came back from {v}: mailbox full.",
    "[mailto:{v}] Thanks for the quick reply, that fixed it.",
    "Her new work address is {v}, the old one was closed in May.",
    "Reported via the web form by {v}.",
    "Forwarding the thread to {v} for the billing questions.",
    "Contact: {v}",
    "If you did not ask for this change, write to {v} within 24 hours.",
    "{v} wrote: the export still times out after ten minutes.",
    '{"user": "{v}", "plan": "pro", "seats": 4}',
)
PHONE_TEMPLATES = _plain(
    "Call me back on {v} after 5pm.",
    "Mobile: {v}",
    "Best number for the site manager is {v}.",
    "Customer left a voicemail from {v} asking about the refund.",
    "I'm on {v} most mornings, otherwise leave a message.",
    "Emergency contact {PERSON}, {v}.",
    "tel. {v} / fax on request",
    "Text {v} when you are outside and someone will open the gate.",
    "Our office moved; the new switchboard is {v}.",
    "Missed call from {v} at 14:32, no message left.",
    "Please ring {v} to rearrange the appointment.",
    "WhatsApp {v} for the quickest answer.",
    "The courier's number on the slip is {v}.",
    "Caller ID showed {v} but the line dropped.",
    "If the alarm goes off, dial {v} and give the account code.",
    "{PERSON} — {v} (evenings only)",
)
IBAN_TEMPLATES = _plain(
    "Please transfer the deposit to IBAN {v} before the 15th.",
    "Refund to account {v}, reference 7741.",
    "Bank details: {v} (BIC on request).",
    "The payment bounced because {v} was entered with a typo.",
    "Our new account is {v}; please update your supplier records.",
    "Beneficiary: {PERSON}, IBAN: {v}",
    "Salary goes into {v} from next month.",
    "Could you confirm that {v} is still the right account for the rent?",
    "SEPA direct debit mandate signed for {v}.",
    "I paid from {v} on Monday but the invoice still shows as unpaid.",
    "Account: {v}",
    "wire to {v} — don't use the old one",
)
CARD_TEMPLATES = _plain(
    "Card number {v}, expiry 09/27.",
    "The charge on {v} was declined twice this morning.",
    "Customer read the card out over the phone: {v}.",
    "I was billed on my card {v} even after cancelling.",
    "Payment method: {v} exp 11/26",
    "Please replace {v} with the new card I got yesterday.",
    "Chargeback opened for the transaction on {v}.",
    "Kindly note my new card number is {v}.",
    "pan={v} amount=49.90 currency=EUR status=declined",
    "I wrote {v} on the booking form by mistake, please delete it.",
    "{v} 08/28 — corporate card, billing address as usual.",
    "Can you refund the deposit to {v} instead of the old card?",
)
NATIONAL_ID_TEMPLATES = _plain(
    "My {term} is {v}.",
    "{term}: {v}",
    "Patient {PERSON}, {term} {v}, admitted for observation.",
    "Please update the record, the {term} on file ({v}) is wrong.",
    "Applicant provided {term} {v} and a utility bill.",
    "Employee's {term}: {v} — needed for payroll.",
    "The form was rejected because {v} does not match their {term}.",
    "I typed {v} into the {term} field and it says invalid.",
    "Tax return filed under {v}.",
    "ID {v} verified in person on Tuesday.",
    "Could you check whether {v} is already registered?",
    "She gave {v} as her {term} on the phone.",
    "{PERSON} ({term} {v}) asked for a copy of the file.",
    "Ref. {term} {v}; documents scanned.",
)
PASSPORT_TEMPLATES = _plain(
    "Passport no. {v}, expires 2031.",
    "Traveller {PERSON}, passport {v}, seat 14C.",
    "Please check the passport number {v} on the booking, it has a typo.",
    "Guest showed {term} passport {v} at check-in.",
    "My passport number is {v} and the visa is attached.",
    "Passport: {v} / Nationality: {term}",
    "The visa application lists passport {v}.",
    "Lost passport ({v}) reported to the police on Saturday.",
    "PASSPORT_NO={v}",
    "Renewed my passport, the new number is {v}.",
)
IP_TEMPLATES = _plain(
    "Failed login from {v} three times in a minute.",
    "sshd[2231]: Accepted publickey for deploy from {v} port 51022 ssh2",
    "The customer's router is at {v}, can you whitelist it?",
    '{v} - - [12/Mar/2024:10:01:44 +0000] "GET /login HTTP/1.1" 200 512',
    "Block {v} at the firewall, it is scraping the catalogue.",
    "My home IP is {v} if that helps with the geo issue.",
    "Pinged {v}, 40% packet loss.",
    "client_ip={v} user_agent=Mozilla/5.0 status=403",
    "The printer has a static address, {v}.",
    "The VPN assigned {v} to the laptop.",
    "Traffic spike from {v} around midnight.",
    "Set the DNS server to {v} and restart.",
    "Connection refused when connecting to {v} on port 5432.",
)
DATE_OF_BIRTH_TEMPLATES = _plain(
    "Patient born {v}, presents with chest pain.",
    "DOB: {v}",
    "Date of birth {v}; allergies: penicillin.",
    "{PERSON} (born {v}) joined the club in 2019.",
    "Please correct my date of birth to {v}, it shows the wrong year.",
    "D.O.B. {v} | Sex: F | MRN 44812",
    "She was born on {v} in Porto.",
    "Birthdate: {v}",
    "Date of Birth: {v}  Nationality: Irish",
    "b. {v}, d. 2019",
    "The policy holder's birthday is {v}.",
    "Pt is a 64 y/o male, dob {v}, hx of diabetes.",
    "Verified identity with date of birth ({v}) and postcode.",
    "Birth date {v} does not match the passport.",
    "born: {v}",
)
ADDRESS_TEMPLATES = _cued_and_bare(
    cued=(
        "Please deliver to {v} — leave it with the neighbour if nobody answers.",
        "Address: {v}",
        "Ship to: {PERSON}, {v}",
        "She lives at {v} with her two children.",
        "New billing address is {v}.",
        "Home address on file: {v}.",
        "The incident happened outside {v} at around 11pm.",
        "Send the replacement to my work address, {v}.",
        "Registered office: {v}",
        "Moved to {v} in March, please update the records.",
        "Home visit booked at the patient's house, {v}.",
        "Return label printed for {v}.",
    ),
    bare=(
        "{v} has had no hot water since Monday.",
        "The parcel for {v} came back undelivered.",
        "Viewing at {v} on Saturday at 10:30.",
        "{v} — second floor, ring twice.",
        "Keys are with the caretaker at {v}.",
        "Water leak reported at {v}, plumber booked.",
        "We met at {v} and walked to the station.",
        "Invoice 5521 still lists {v}; that flat was sold last year.",
        "{v} is the last stop on Thursday's route.",
        "Another noise complaint about {v} this week.",
    ),
)
PERSON_TEMPLATES = _cued_and_bare(
    cued=(
        "Patient: {v}, 54, admitted with shortness of breath.",
        "Dear {v},\nThank you for your order.",
        "I spoke with {v} this morning and she agreed to the new date.",
        "Referred by {v} from the cardiology clinic.",
        "Customer {v} called about the missing refund.",
        "Regards,\n{v}",
        "Hi {v}, your ticket has been escalated.",
        "Signed: {v}",
        "Ticket assigned to {v} in the billing team.",
        "Next of kin: {v} (daughter).",
        "My name is {v} and I'm writing about my account.",
        "Seen by {v} on the ward round.",
        "Tenant {v} reports a broken boiler.",
        "Approved by {v}, head of procurement.",
        "Thanks, {v} — I'll pass this on.",
        "Mrs {v} was discharged on day three.",
        "Booking under the name {v}, two adults.",
        "The account holder, {v}, has asked us to close the account.",
        "Witness statement taken from {v} at the scene.",
        "Please add {v} to the guest list for Friday.",
    ),
    bare=(
        "{v} will collect the parcel on Friday.",
        "{v} left the keys at reception.",
        "The minutes were taken by {v}.",
        "{v} still owes two library books.",
        "Friday's shift is covered by {v}.",
        "{v} won the raffle at the summer fair.",
        "According to {v}, the meeting moved to Thursday.",
        "{v} has been off sick since Tuesday.",
        "The report from {v} arrived late again.",
        "{v} and the team finished the audit early.",
        "Last week {v} ran the Berlin marathon in under four hours.",
        "{v} forgot the charger in room 12.",
        "Lunch with {v} is moved to one o'clock.",
        "{v} prefers the window seat.",
        "The van was parked by {v} in the wrong bay.",
        "{v} submitted the expense claim twice.",
        "Nobody has heard from {v} since the move.",
    ),
)
AWS_KEY_ID_TEMPLATES = _plain(
    "aws_access_key_id = {v}",
    "AWS_ACCESS_KEY_ID={v} is still in the CI logs, please rotate it.",
    "The leaked key {v} belongs to the deploy user.",
    "Access key ID: {v}",
    "export AWS_ACCESS_KEY_ID={v}",
)
AWS_SECRET_TEMPLATES = _plain(
    "aws_secret_access_key = {v}",
    "AWS_SECRET_ACCESS_KEY={v}",
    "aws_secret_access_key: {v}  # prod, do not share",
    "[default]\nregion = eu-west-1\naws_secret_access_key = {v}",
)
API_TOKEN_TEMPLATES = _plain(
    "Here is the {term} token: {v}",
    "{term} key {v} was pasted in the public channel by mistake.",
    "Authorization: Bearer {v}",
    "I committed {v} to the repo yesterday, is it revoked?",
    "api_key: {v}",
    "curl -H 'Authorization: token {v}' https://api.example.com/user",
    "Use {v} for the staging account only.",
    "The {term} integration stopped working after we rotated {v}.",
)
JWT_TEMPLATES = _plain(
    "Authorization: Bearer {v}",
    'curl -H "Authorization: Bearer {v}" https://api.internal/v2/orders',
    "The session cookie is {v}, it expires in an hour.",
    "Here is the JWT from the failing request: {v}",
    "id_token={v}&state=af0ifjsldkj",
)
PEM_TEMPLATES = _plain(
    "{v}",
    "Contents of id_rsa:\n{v}",
    "The key we got from the vendor:\n{v}\nplease store it in the vault.",
    "I think this key leaked, it was on the wiki page:\n\n{v}\n",
)
PASSWORD_TEMPLATES = _plain(
    "password: {v}",
    "pwd={v}",
    "DB_PASSWORD={v}",
    "login admin / password {v}",
    "The wifi password is {v}",
    "passwd = {v}",
    "My password is {v} — please reset it, I shared it by mistake.",
    "mysql -u root -p{v} shop",
    "Temporary password: {v} (change it on first login)",
    '"password": "{v}"',
    "PGPASSWORD={v} psql -h db -U app",
)
URL_TEMPLATES = _plain(
    "git clone https://{v}@git.example.com/team/app.git",
    "DATABASE_URL=postgres://{v}@db.internal:5432/orders",
    "The connection string is mongodb+srv://{v}@cluster0.example.net/test",
    "ftp://{v}@files.example.org/upload/ worked from the office",
    "redis://{v}@cache-01:6379/0",
    "Proxy set to http://{v}@proxy.corp:3128",
    "amqp://{v}@rabbitmq:5672/%2f is in the compose file",
    "Open https://{v}@intranet.example.com/reports in the browser",
)

# --------------------------------------------------------------------------------------------------------------
# Values


class Draw:
    """The random source of the generators: one RNG and one seeded Faker per locale."""

    def __init__(self, seed: int):
        self.seed = seed
        self.rng = random.Random(seed)
        self._fakers: dict[str, Faker] = {}

    def faker(self, locale: str) -> Faker:
        if locale not in self._fakers:
            fake = Faker(locale)
            fake.seed_instance(self.seed * 1_000_003 + zlib.crc32(locale.encode()))
            self._fakers[locale] = fake
        return self._fakers[locale]

    def chars(self, alphabet: str, count: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(count))

    def pick(self, options: Sequence[T]) -> T:
        return self.rng.choice(options)

    def valid(self, make: Callable[[], str], is_valid: Callable[[str], bool]) -> str:
        """A draw of ``make`` that ``is_valid`` accepts; invalid draws are dropped."""
        for _ in range(10_000):
            value = make()
            if is_valid(value):
                return value
        raise RuntimeError(f"no valid value in 10,000 draws of {make}")


Drawer = Callable[[Draw], tuple[str, str]]  # -> (value, the style it is written in)


@dataclass(frozen=True)
class Source:
    """Values of one kind from one generator, and the templates they go into."""

    kind: str
    label: str
    draw: Drawer
    templates: Templates
    term: str = ""  # what people call the value, for "{term}" in its templates


_DIGITS, _UPPER = string.digits, string.ascii_uppercase
_ALNUM = string.ascii_letters + string.digits
_BASE64 = _ALNUM + "+/"
_URL_SAFE = _ALNUM + "-_"


def _fixed(make: Callable[[Draw], str]) -> Drawer:
    return lambda draw: (make(draw), "")


def _styled(make: Callable[[Draw], dict[str, str]]) -> Drawer:
    """One of the ways ``make`` writes a value (style -> text), picked at random."""

    def draw_styled(draw: Draw) -> tuple[str, str]:
        written = make(draw)
        style = draw.pick(list(written))
        return written[style], style

    return draw_styled


# Phone numbers: Faker's, valid in the region's plan, rewritten in one of several styles.
PHONE_LOCALES = {"US": "en_US", "GB": "en_GB", "DE": "de_DE", "FR": "fr_FR", "ES": "es_ES", "IT": "it_IT",
                 "NL": "nl_NL", "BR": "pt_BR", "IN": "en_IN", "PL": "pl_PL", "SE": "sv_SE", "AU": "en_AU",
                 "CA": "en_CA", "CH": "de_CH", "JP": "ja_JP", "MX": "es_MX"}


def _valid_phone(number: str, region: str) -> bool:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed) and not parsed.extension


def _phone_styles(written: str, region: str) -> dict[str, str]:
    parsed = phonenumbers.parse(written, region)
    international = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    country, _, rest = international.partition(" ")
    trunk = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix
    return {
        "as written": written,
        "international": international,
        "E.164": phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        "national": phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL),
        "00 prefix": "00" + international[1:],
        "dots": country + "." + re.sub(r"[\s-]+", ".", rest),
        "dashes": country + "-" + re.sub(r"\s+", "-", rest),
        "brackets": f"{country} (0){rest}" if trunk == "0" else f"({country}) {rest}",
    }


def _phone(region: str) -> Drawer:
    def written(draw: Draw) -> dict[str, str]:
        fake = draw.faker(PHONE_LOCALES[region])
        return _phone_styles(draw.valid(fake.phone_number, lambda number: _valid_phone(number, region)), region)

    return _styled(written)


# IBANs and cards
IBAN_LOCALES = ("de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL", "pt_PT", "fi_FI", "de_AT", "de_CH", "en_GB",
                "en_IE", "no_NO", "da_DK", "cs_CZ", "ro_RO", "tr_TR")
CARD_TYPES = ("visa16", "mastercard", "amex", "discover", "jcb16", "diners", "maestro", "visa19")


def _iban(locale: str) -> Drawer:
    def written(draw: Draw) -> dict[str, str]:
        value = draw.valid(draw.faker(locale).iban, iban.is_valid)
        return {"compact": value, "groups of 4": iban.format(value)}

    return _styled(written)


def _card_groups(number: str) -> list[str]:
    sizes = {15: (4, 6, 5), 14: (4, 6, 4)}.get(len(number), (4,) * (len(number) // 4) + (len(number) % 4,))
    groups, at = [], 0
    for size in sizes:
        groups.append(number[at : at + size])
        at += size
    return [group for group in groups if group]


def _card(card_type: str) -> Drawer:
    def written(draw: Draw) -> dict[str, str]:
        number = draw.valid(lambda: draw.faker("en_US").credit_card_number(card_type), luhn.is_valid)
        groups = _card_groups(number)
        return {"compact": number, "spaces": " ".join(groups), "dashes": "-".join(groups)}

    return _styled(written)


# National identifiers: Faker's where its locale has them, else the published format; checked by python-stdnum.
def _stdnum_id(module: ModuleType, make: Callable[[Draw], str]) -> Drawer:
    def written(draw: Draw) -> dict[str, str]:
        value = module.compact(draw.valid(lambda: make(draw), module.is_valid))
        formatted = module.format(value) if hasattr(module, "format") else value
        return {"compact": value, "formatted": formatted} if formatted != value else {"as issued": value}

    return _styled(written)


def _faker_id(locale: str, method: str = "ssn") -> Callable[[Draw], str]:
    return lambda draw: getattr(draw.faker(locale), method)()


def _random_digits(first: str, count: int) -> Callable[[Draw], str]:
    return lambda draw: draw.pick(first) + draw.chars(_DIGITS, count - 1)


_NINO_FIRST, _NINO_SECOND = "ABCEGHJKLMNOPRSTWXYZ", "ABCEGHJKLMNPRSTWXYZ"  # HMRC: no D, F, I, Q, U, V (nor O second)
_NINO_BARRED = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def _nino(draw: Draw) -> dict[str, str]:
    """A UK National Insurance number by HMRC's rules (Faker's en_GB ones all start with the barred "ZZ")."""
    prefix = draw.valid(lambda: draw.chars(_NINO_FIRST, 1) + draw.chars(_NINO_SECOND, 1),
                        lambda letters: letters not in _NINO_BARRED)
    digits, suffix = draw.chars(_DIGITS, 6), draw.pick("ABCD")
    return {"compact": f"{prefix}{digits}{suffix}",
            "formatted": f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"}


NATIONAL_IDS: tuple[tuple[str, str, Drawer], ...] = (  # (label, term, drawer)
    ("US SSN", "social security number", _stdnum_id(ssn, _faker_id("en_US"))),
    ("UK National Insurance number", "National Insurance number", _styled(_nino)),
    ("UK NHS number", "NHS number", _stdnum_id(nhs, _random_digits("4679", 10))),
    ("DE Steuer-ID", "Steuer-ID", _stdnum_id(idnr, _random_digits("123456789", 11))),
    ("FR NIR", "numéro de sécurité sociale", _stdnum_id(nir, _faker_id("fr_FR"))),
    ("ES DNI", "DNI", _stdnum_id(dni, _faker_id("es_ES", "nif"))),
    ("ES NIE", "NIE", _stdnum_id(nie, _faker_id("es_ES", "nie"))),
    ("IT codice fiscale", "codice fiscale", _stdnum_id(codicefiscale, _faker_id("it_IT"))),
    ("NL BSN", "BSN", _stdnum_id(bsn, _faker_id("nl_NL"))),
    ("IN Aadhaar", "Aadhaar number", _stdnum_id(aadhaar, _faker_id("en_IN", "aadhaar_id"))),
    ("IN PAN", "PAN", _stdnum_id(pan, _faker_id("en_IN", "pan"))),
    ("BR CPF", "CPF", _stdnum_id(cpf, _faker_id("pt_BR", "cpf"))),
    ("PL PESEL", "PESEL", _stdnum_id(pesel, _faker_id("pl_PL", "pesel"))),
    ("SE personnummer", "personnummer", _stdnum_id(personnummer, _faker_id("sv_SE"))),
    ("AU tax file number", "tax file number", _stdnum_id(tfn, _random_digits("123456789", 9))),
    ("CA SIN", "SIN", _stdnum_id(sin, _faker_id("en_CA"))),
    ("FI henkilötunnus", "henkilötunnus", _stdnum_id(hetu, _faker_id("fi_FI"))),
    ("NO fødselsnummer", "fødselsnummer", _stdnum_id(fodselsnummer, _faker_id("no_NO"))),
    ("CH AHV number", "AHV number", _stdnum_id(ahv, _faker_id("de_CH"))),
    ("BE national number", "national register number", _stdnum_id(nn, _faker_id("nl_BE"))),
    ("MX CURP", "CURP", _stdnum_id(curp, _faker_id("es_MX", "curp"))),
    ("TR kimlik no", "T.C. kimlik no", _stdnum_id(tckimlik, _faker_id("tr_TR"))),
    ("KR resident registration number", "resident registration number", _stdnum_id(rrn, _faker_id("ko_KR"))),
    ("CN resident identity card", "ID card number", _stdnum_id(ric, _faker_id("zh_CN"))),
)

# Passports have no checksum to validate; these follow each country's published number format.
_NL_LETTERS = _UPPER.replace("O", "")
PASSPORTS: tuple[tuple[str, str, Callable[[Draw], str]], ...] = (  # (label, nationality, make)
    ("US passport", "US", lambda draw: draw.faker("en_US").passport_number()),
    ("UK passport", "British", lambda draw: draw.chars(_DIGITS, 9)),
    ("DE Reisepass", "German", lambda draw: "C" + draw.chars("CFGHJKLMNPRTVWXYZ" + _DIGITS, 8)),
    ("FR passeport", "French", lambda draw: draw.chars(_DIGITS, 2) + draw.chars(_UPPER, 2) + draw.chars(_DIGITS, 5)),
    ("ES pasaporte", "Spanish", lambda draw: draw.chars(_UPPER, 3) + draw.chars(_DIGITS, 6)),
    ("IT passaporto", "Italian", lambda draw: draw.chars(_UPPER, 2) + draw.chars(_DIGITS, 7)),
    ("IN passport", "Indian", lambda draw: draw.chars(_UPPER, 1) + draw.chars(_DIGITS, 7)),
    ("NL paspoort", "Dutch",
     lambda draw: draw.chars(_NL_LETTERS, 2) + draw.chars(_NL_LETTERS + _DIGITS, 6) + draw.chars(_DIGITS, 1)),
    ("CA passport", "Canadian", lambda draw: draw.chars(_UPPER, 2) + draw.chars(_DIGITS, 6)),
    ("AU passport", "Australian", lambda draw: draw.chars(_UPPER, 2) + draw.chars(_DIGITS, 7)),
)


# E-mail and IP addresses, dates of birth
EMAIL_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "en_IN", "pl_PL")
_EMAIL_TAGS = ("news", "shop", "work", "bank", "travel", "github", "2024")
_DEPARTMENTS = ("cs", "med", "hr", "finance", "support", "eng", "law", "physics")
EMAILS: dict[str, Callable[[Faker], str]] = {
    "free mail": lambda fake: fake.ascii_free_email(),
    "company": lambda fake: fake.ascii_company_email(),
    "tagged": lambda fake: f"{fake.user_name()}+{fake.random_element(_EMAIL_TAGS)}@{fake.free_email_domain()}",
    "department": lambda fake: f"{fake.user_name()}@{fake.random_element(_DEPARTMENTS)}.{fake.domain_name()}",
}


def _email(make: Callable[[Faker], str]) -> Drawer:
    def draw_email(draw: Draw) -> tuple[str, str]:
        locale = draw.pick(EMAIL_LOCALES)
        return make(draw.faker(locale)).lower(), locale

    return draw_email


def _ipv6_compressed(draw: Draw) -> str:
    """A /64 prefix and a short host part, as routers and logs write them: 2a02:810d:4b40:1e0::1f."""
    groups = [draw.rng.randrange(0x2000, 0x3000)] + [draw.rng.randrange(1, 0x10000) for _ in range(3)]
    host = draw.rng.randrange(1, 0x10000)
    return str(ipaddress.IPv6Address(sum(group << (112 - 16 * i) for i, group in enumerate(groups)) + host))


IPS: dict[str, Callable[[Draw], str]] = {
    "IPv4 public": lambda draw: draw.faker("en_US").ipv4_public(),
    "IPv4 private": lambda draw: draw.faker("en_US").ipv4_private(),
    "IPv6 full": lambda draw: draw.faker("en_US").ipv6(),
    "IPv6 compressed": _ipv6_compressed,
    "IPv4-mapped IPv6": lambda draw: "::ffff:" + draw.faker("en_US").ipv4_public(),
}


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


DATE_STYLES: dict[str, Callable[[date], str]] = {
    "3 May 1990": lambda day: f"{day.day} {day:%B %Y}",
    "May 3, 1990": lambda day: f"{day:%B} {day.day}, {day.year}",
    "3rd May 1990": lambda day: f"{_ordinal(day.day)} {day:%B %Y}",
    "3 Jan 1990": lambda day: f"{day.day} {day:%b %Y}",
    "1990-05-03": lambda day: day.isoformat(),
    "03/05/1990": lambda day: f"{day:%d/%m/%Y}",
    "05/03/1990": lambda day: f"{day:%m/%d/%Y}",
    "03.05.1990": lambda day: f"{day:%d.%m.%Y}",
    "03-May-1990": lambda day: f"{day:%d-%b-%Y}",
    "03/05/90": lambda day: f"{day:%d/%m/%y}",
}


def _date_of_birth(style: Callable[[date], str]) -> Drawer:
    return _fixed(lambda draw: style(draw.faker("en_US").date_of_birth(minimum_age=0, maximum_age=95)))


# Names and postal addresses
NAME_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "en_IN", "pl_PL", "sv_SE",
                "tr_TR")
ADDRESS_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "pl_PL", "en_AU", "en_CA",
                   "sv_SE", "en_IN")
_MILITARY_MAIL = re.compile(r"\b(?:FPO|APO|DPO|PSC|USNS|USNV|USS|USCGC)\b")


def _person(locale: str) -> Drawer:
    def make(draw: Draw) -> str:
        fake = draw.faker(locale)
        return f"{fake.first_name()} {fake.last_name()}"

    return _fixed(make)


def _address(locale: str) -> Drawer:
    """Faker's address for the locale, its lines joined with commas as in running text (US military mail dropped)."""
    def make(draw: Draw) -> str:
        address = draw.valid(draw.faker(locale).address, lambda text: not _MILITARY_MAIL.search(text))
        return re.sub(r"\s*\n\s*", ", ", address)

    return _fixed(make)


# Credentials, in the shapes their issuers document
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(draw: Draw) -> str:
    """An HS256 JWT with a real header, payload and HMAC signature."""
    fake = draw.faker("en_US")
    issued = draw.rng.randrange(1_600_000_000, 1_750_000_000)
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"sub": fake.uuid4(), "name": fake.name(), "email": fake.email(), "iat": issued, "exp": issued + 3600}
    signing_input = f"{header}.{_b64url(json.dumps(claims, separators=(',', ':')).encode())}"
    signature = hmac.new(draw.rng.randbytes(32), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


PEM_SIZES = {"RSA PRIVATE KEY": 1191, "PRIVATE KEY": 1218, "EC PRIVATE KEY": 121, "OPENSSH PRIVATE KEY": 387,
             "ENCRYPTED PRIVATE KEY": 1298}  # DER bytes of a 2048-bit RSA, PKCS#8, P-256 and ed25519 key


def _pem(draw: Draw) -> tuple[str, str]:
    label = draw.pick(list(PEM_SIZES))
    body = draw.rng.randbytes(PEM_SIZES[label])
    if label.startswith("OPENSSH"):
        body = b"openssh-key-v1\0" + body
    encoded = base64.b64encode(body).decode()
    lines = [encoded[at : at + 64] for at in range(0, len(encoded), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]), label


def _password(draw: Draw, url_safe: bool = False) -> str:
    fake = draw.faker("en_US")
    styles = (
        lambda: fake.password(length=draw.rng.randint(10, 18), special_chars=not url_safe),
        lambda: f"{fake.word().capitalize()}{draw.rng.randint(1970, 2025)}{draw.pick('!.*_-')}",
        lambda: "-".join(fake.words(4)),
    )
    return draw.pick(styles)()


def _url_credentials(draw: Draw) -> str:
    return f"{draw.faker('en_US').user_name()}:{_password(draw, url_safe=True)}"


SECRETS: tuple[tuple[str, Callable[[Draw], str], Templates, str], ...] = (  # (label, make, templates, term)
    ("AWS access key id", lambda draw: "AKIA" + draw.chars(_UPPER + "234567", 16), AWS_KEY_ID_TEMPLATES, "AWS"),
    ("AWS temporary key id", lambda draw: "ASIA" + draw.chars(_UPPER + "234567", 16), AWS_KEY_ID_TEMPLATES, "AWS"),
    ("AWS secret access key", lambda draw: draw.chars(_BASE64, 40), AWS_SECRET_TEMPLATES, "AWS"),
    ("GitHub classic token", lambda draw: "ghp_" + draw.chars(_ALNUM, 36), API_TOKEN_TEMPLATES, "GitHub"),
    ("GitHub fine-grained token", lambda draw: f"github_pat_{draw.chars(_ALNUM, 22)}_{draw.chars(_ALNUM, 59)}",
     API_TOKEN_TEMPLATES, "GitHub"),
    ("Slack bot token",
     lambda draw: f"xoxb-{draw.chars(_DIGITS, 12)}-{draw.chars(_DIGITS, 13)}-{draw.chars(_ALNUM, 24)}",
     API_TOKEN_TEMPLATES, "Slack"),
    ("Slack user token", lambda draw: f"xoxp-{draw.chars(_DIGITS, 12)}-{draw.chars(_DIGITS, 12)}-"
                                      f"{draw.chars(_DIGITS, 13)}-{draw.chars('0123456789abcdef', 32)}",
     API_TOKEN_TEMPLATES, "Slack"),
    ("Stripe live secret key", lambda draw: "sk_live_" + draw.chars(_ALNUM, 24), API_TOKEN_TEMPLATES, "Stripe"),
    ("Stripe restricted key", lambda draw: "rk_live_" + draw.chars(_ALNUM, 24), API_TOKEN_TEMPLATES, "Stripe"),
    ("Google API key", lambda draw: "AIza" + draw.chars(_URL_SAFE, 35), API_TOKEN_TEMPLATES, "Google Maps"),
    ("OpenAI project key", lambda draw: f"sk-proj-{draw.chars(_URL_SAFE, 74)}T3BlbkFJ{draw.chars(_URL_SAFE, 74)}",
     API_TOKEN_TEMPLATES, "OpenAI"),
    ("OpenAI legacy key", lambda draw: f"sk-{draw.chars(_ALNUM, 20)}T3BlbkFJ{draw.chars(_ALNUM, 20)}",
     API_TOKEN_TEMPLATES, "OpenAI"),
    ("JWT (HS256)", _jwt, JWT_TEMPLATES, ""),
    ("password", _password, PASSWORD_TEMPLATES, ""),
)


def catalogue() -> dict[str, list[Source]]:
    """Every generator, by kind."""
    sources: dict[str, list[Source]] = defaultdict(list)

    def add(kind: str, label: str, drawer: Drawer, templates: Templates, term: str = "") -> None:
        sources[kind].append(Source(kind, label, drawer, templates, term))

    for style, make in EMAILS.items():
        add("EMAIL", style, _email(make), EMAIL_TEMPLATES)
    for region in PHONE_LOCALES:
        add("PHONE", region, _phone(region), PHONE_TEMPLATES)
    for card_type in CARD_TYPES:
        add("CARD", card_type, _card(card_type), CARD_TEMPLATES)
    for locale in IBAN_LOCALES:
        add("IBAN", locale[-2:], _iban(locale), IBAN_TEMPLATES)
    for label, term, drawer in NATIONAL_IDS:
        add("NATIONAL_ID", label, drawer, NATIONAL_ID_TEMPLATES, term)
    for label, nationality, make in PASSPORTS:
        add("PASSPORT", label, _fixed(make), PASSPORT_TEMPLATES, nationality)
    for label, make in IPS.items():
        add("IP", label, _fixed(make), IP_TEMPLATES)
    add("CREDENTIALS", "user:password in a URL", _fixed(_url_credentials), URL_TEMPLATES)
    for label, make, templates, term in SECRETS:
        add("SECRET", label, _fixed(make), templates, term)
    add("SECRET", "PEM private key", _pem, PEM_TEMPLATES)
    for label, style in DATE_STYLES.items():
        add("DATE_OF_BIRTH", label, _date_of_birth(style), DATE_OF_BIRTH_TEMPLATES)
    for locale in ADDRESS_LOCALES:
        add("ADDRESS", locale, _address(locale), ADDRESS_TEMPLATES)
    for locale in NAME_LOCALES:
        add("PERSON", locale, _person(locale), PERSON_TEMPLATES)
    return dict(sources)


# --------------------------------------------------------------------------------------------------------------
# The evaluation set


@dataclass(frozen=True)
class Planted:
    """A value put into a sample's text at ``start:end``."""

    kind: str
    value: str
    source: str
    style: str
    family: str  # "cued"/"bare" for names and addresses, "beside <KIND>" for a value in another kind's template
    start: int
    end: int


@dataclass(frozen=True)
class Sample:
    text: str
    planted: tuple[Planted, ...]


_SLOT = re.compile(r"\{(v|term|[A-Z_]+)\}")


def _fill(template: str, family: str, source: Source, draw: Draw, sources: dict[str, list[Source]]) -> Sample:
    text, planted, copied = "", [], 0
    for slot in _SLOT.finditer(template):
        text += template[copied : slot.start()]
        copied = slot.end()
        if slot.group(1) == "term":
            text += source.term
            continue
        main = slot.group(1) == "v"
        by = source if main else sources[slot.group(1)][draw.rng.randrange(len(sources[slot.group(1)]))]
        value, style = by.draw(draw)
        planted.append(Planted(by.kind, value, by.label, style, family if main else f"beside {source.kind}",
                               len(text), len(text) + len(value)))
        text += value
    return Sample(text + template[copied:], tuple(planted))


def build_set(seed: int, per_kind: int) -> list[Sample]:
    """``per_kind`` texts per kind (at least three per generator), cycling through its generators and templates."""
    draw = Draw(seed)
    sources = catalogue()
    samples = []
    for kind_sources in sources.values():
        for i in range(max(per_kind, 3 * len(kind_sources))):
            source = kind_sources[i % len(kind_sources)]
            family, template = source.templates[i % len(source.templates)]
            samples.append(_fill(template, family, source, draw, sources))
    return samples


# --------------------------------------------------------------------------------------------------------------
# Recall

_PIECE = re.compile(r"[^\W_]{4,}")


def pieces(value: str) -> list[str]:
    """What must not survive: the value's runs of 4+ letters or digits, or the whole value when it has none."""
    return _PIECE.findall(value) or [value]


@dataclass(frozen=True)
class Outcome:
    planted: Planted
    redacted: bool  # no piece of the value left
    gone: bool  # the exact value string no longer appears
    placeholder: str  # the kind(s) of the spans over the value, "none" if none
    output: str


def score(samples: Sequence[Sample], redactor: Redactor) -> list[Outcome]:
    texts = [sample.text for sample in samples]
    outputs = [output for output, _ in redactor.redact_many(texts)]
    outcomes = []
    for sample, output, spans in zip(samples, outputs, redactor.find(texts), strict=True):
        for planted in sample.planted:
            rest = sample.text[: planted.start] + sample.text[planted.end :]  # what the text holds besides the value
            left = [piece for piece in pieces(planted.value) if output.count(piece) > rest.count(piece)]
            over = sorted({span.kind for span in spans if span.start < planted.end and planted.start < span.end})
            outcomes.append(Outcome(planted, not left, output.count(planted.value) <= rest.count(planted.value),
                                    "+".join(over) or "none", output))
    return outcomes


def recall_by(outcomes: Sequence[Outcome], key: Callable[[Planted], str]) -> dict[str, dict]:
    grouped: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        grouped[key(outcome.planted)].append(outcome)
    return {name: _recall(group) for name, group in grouped.items()}


def _recall(outcomes: Sequence[Outcome]) -> dict:
    values = len(outcomes)
    redacted = sum(outcome.redacted for outcome in outcomes)
    return {"values": values, "redacted": redacted, "recall": redacted / values,
            "exact_recall": sum(outcome.gone for outcome in outcomes) / values,
            "placeholders": dict(Counter(outcome.placeholder for outcome in outcomes).most_common())}


def group_recall(outcomes: Sequence[Outcome]) -> dict[str, dict]:
    return {group: _recall([outcome for outcome in outcomes if outcome.planted.kind in kinds])
            for group, kinds in GROUPS.items()}


def misses(outcomes: Sequence[Outcome]) -> dict[str, list[dict]]:
    """Every miss, by kind, in turns over its generators (names and addresses: template families), the generator
    with the most misses first, so that the first few show as many different failures as possible."""
    by_key: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        if not outcome.redacted:
            by_key[outcome.planted.kind, outcome.planted.family or outcome.planted.source].append(outcome)
    ranked = sorted(((turn, -len(found), outcome) for found in by_key.values() for turn, outcome in enumerate(found)),
                    key=lambda entry: entry[:2])
    found: dict[str, list[dict]] = defaultdict(list)
    for _, _, outcome in ranked:
        planted = outcome.planted
        found[planted.kind].append({"source": planted.source, "style": planted.style, "family": planted.family,
                                    "value": planted.value, "placeholder": outcome.placeholder,
                                    "output": outcome.output})
    return dict(found)


def misses_by_source(outcomes: Sequence[Outcome]) -> list[dict]:
    """Per generator with misses: values, misses, and the styles or template families of the misses."""
    rows: dict[tuple[str, str], dict] = {}
    for outcome in outcomes:
        planted = outcome.planted
        row = rows.setdefault((planted.kind, planted.source), {"kind": planted.kind, "source": planted.source,
                                                               "values": 0, "missed": 0, "missed_as": Counter()})
        row["values"] += 1
        if not outcome.redacted:
            row["missed"] += 1
            row["missed_as"][planted.style or planted.family or "-"] += 1
    return [{**row, "missed_as": dict(row["missed_as"])} for row in rows.values() if row["missed"]]


# --------------------------------------------------------------------------------------------------------------
# Precision and cost on clean rows


@dataclass(frozen=True)
class Row:
    corpus: str
    id: str
    texts: tuple[str, ...]  # the document, then the summaries


def clean_rows(limit: int, seed: int, scitldr_dir: Path) -> dict[str, list[Row]]:
    """Up to ``limit`` papers per corpus (a seeded sample when there are more), each one row."""
    rows: dict[str, list[Row]] = {"ACLSum": [], "SciTLDR": []}
    for paper in load_papers(scitldr_dir):
        corpus = "ACLSum" if paper.id.startswith("aclsum/") else "SciTLDR"
        rows[corpus].append(Row(corpus, paper.id, (" ".join(paper.sentences), *paper.summaries)))
    rng = random.Random(seed)
    return {corpus: sorted(rng.sample(found, limit), key=lambda row: row.id) if len(found) > limit else found
            for corpus, found in rows.items()}


@contextmanager
def counting_ner_input() -> Iterator[Counter]:
    """Counts what the NER pre-filter passes to the model, by wrapping ``names.candidate_sentences``."""
    counts: Counter = Counter()
    original = names.candidate_sentences

    def counted(text: str, scope: str, pii_at: Sequence[int] = ()) -> list[tuple[int, str, bool]]:
        chosen = original(text, scope, pii_at)
        counts["texts_sent"] += bool(chosen)
        counts["sentences_sent"] += len(chosen)
        counts["chars_sent"] += sum(len(sentence) for _, sentence, _ in chosen)
        return chosen

    names.candidate_sentences = counted
    try:
        yield counts
    finally:
        names.candidate_sentences = original


def judged_finds(path: Path = JUDGED_FINDS) -> dict[tuple[str, str, str], bool]:
    """(row, kind, value) -> whether the find is personal data, as judged by reading it."""
    return {(find["row"], find["kind"], find["value"]): find["personal"]
            for find in json.loads(path.read_text(encoding="utf-8"))["finds"]}


def precision(redactor: Redactor, rows: Sequence[Row], examples: int,
              judged: dict[tuple[str, str, str], bool] | None = None) -> dict:
    """Rows and texts changed, the placeholders put in, the rows holding a find judged not personal (and the finds
    not judged), examples with their context; what went to the NER model."""
    judged = judged_finds() if judged is None else judged
    changed_rows, changed_texts, kinds, shown = 0, Counter(), Counter(), []
    false_rows, unjudged = 0, []
    rows_to_ner, ner = 0, Counter()
    with counting_ner_input() as counts:
        for row in rows:
            before = counts["texts_sent"]
            found = redactor.find(row.texts)  # once: a second pass would count its NER input twice
            rows_to_ner += counts["texts_sent"] > before
            changed = [index for index, spans in enumerate(found) if spans]
            if not changed:
                continue
            changed_rows += 1
            changed_texts.update("document" if index == 0 else "summary" for index in changed)
            kinds.update(span.kind for spans in found for span in spans)
            changes = _changes(row, found)
            verdicts = [judged.get((row.id, change["kind"], change["value"])) for change in changes]
            false_rows += any(verdict is False for verdict in verdicts)
            unjudged += [change for change, verdict in zip(changes, verdicts, strict=True) if verdict is None]
            if len(shown) < examples:
                shown += changes[: examples - len(shown)]
        ner.update(counts)
    chars = sum(len(text) for row in rows for text in row.texts)
    return {"rows": len(rows), "rows_changed": changed_rows, "share_changed": changed_rows / len(rows),
            "rows_with_a_false_find": false_rows, "share_with_a_false_find": false_rows / len(rows),
            "unjudged_finds": unjudged,
            "texts_changed": dict(changed_texts), "placeholders": dict(kinds.most_common()), "examples": shown,
            "ner": {"rows_sent": rows_to_ner, "share_rows_sent": rows_to_ner / len(rows),
                    "sentences_sent_per_row": ner["sentences_sent"] / len(rows),
                    "share_chars_sent": ner["chars_sent"] / chars}}


def _changes(row: Row, found: Sequence[Sequence[Span]], context: int = 30) -> list[dict]:
    """Each span the redactor ``found`` in the row's texts, with its value and context."""
    changes = []
    for text, spans in zip(row.texts, found, strict=True):
        for span in spans:
            left = text[max(0, span.start - context) : span.start]
            right = text[span.end : span.end + context]
            changes.append({"row": row.id, "kind": span.kind, "value": text[span.start : span.end],
                            "context": f"…{left}[{span.kind}: {text[span.start : span.end]}]{right}…"})
    return changes


def seconds_per_row(redactor: Redactor, rows: Sequence[Row], repeat: int) -> list[float]:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        for row in rows:
            redactor.redact_many(row.texts)
        timings.append((time.perf_counter() - start) / len(rows))
    return timings


# --------------------------------------------------------------------------------------------------------------
# Report


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|").replace("\n", "⏎") for cell in row) + " |"
              for row in rows]
    return "\n".join(lines)


def _cell(scores: dict) -> str:
    return f"{scores['recall']:.3f} ({scores['exact_recall']:.3f})"


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def report_set(samples: Sequence[Sample]) -> str:
    planted = [value for sample in samples for value in sample.planted]
    kinds = Counter(value.kind for value in planted)
    families = Counter((value.kind, value.family) for value in planted if value.kind in GROUPS["names and addresses"])
    lines = [f"{len(samples)} texts, {len(planted)} values: "
             + ", ".join(f"{kind} {count}" for kind, count in kinds.items()),
             "Names and addresses by template family: "
             + ", ".join(f"{kind} {family} {count}" for (kind, family), count in sorted(families.items()))]
    return "\n".join(lines)


def report_recall(results: dict, modes: Sequence[str]) -> str:
    primary = modes[0]
    per_kind = table(
        ["kind", "values", *(f"recall {mode} (exact)" for mode in modes), f"placeholders ({primary})"],
        [[kind, results[primary]["per_kind"][kind]["values"],
          *(_cell(results[mode]["per_kind"][kind]) for mode in modes),
          ", ".join(f"{name} {n}" for name, n in results[primary]["per_kind"][kind]["placeholders"].items())]
         for kind in KIND_ORDER],
    )
    groups = table(
        ["group", "values", *(f"recall {mode} (exact)" for mode in modes), "goal"],
        [[group, results[primary]["groups"][group]["values"],
          *(_cell(results[mode]["groups"][group]) for mode in modes), f">= {RECALL_GOALS[group]}"]
         for group in GROUPS],
    )
    families = table(
        ["kind / template family", "values", *(f"recall {mode}" for mode in modes)],
        [[name, scores["values"], *(f"{results[mode]['families'][name]['recall']:.3f}" for mode in modes)]
         for name, scores in sorted(results[primary]["families"].items())],
    )
    return "\n\n".join([per_kind, groups, families])


def report_misses(result: dict) -> str:
    by_source = table(
        ["kind", "source", "values", "missed", "missed: style or template family"],
        [[row["kind"], row["source"], row["values"], row["missed"],
          ", ".join(f"{name} {n}" for name, n in row["missed_as"].items())]
         for row in sorted(result["misses_by_source"], key=lambda row: KIND_ORDER.index(row["kind"]))],
    )
    examples = table(
        ["kind", "source (style or family)", "value", "placeholder", "output"],
        [[kind, f"{miss['source']} ({miss['style'] or miss['family'] or '-'})", _short(miss["value"], 60),
          miss["placeholder"], _short(miss["output"])]
         for kind in KIND_ORDER for miss in result["misses"].get(kind, [])[:MISSES_SHOWN]],
    )
    return f"{by_source}\n\n{examples}"


def report_precision(results: dict, modes: Sequence[str]) -> str:
    rows = []
    for mode in modes:
        for corpus, found in results[mode].items():
            rows.append([corpus, mode, found["rows"], found["rows_changed"], f"{found['share_changed']:.2%}",
                         f"{found['rows_with_a_false_find']} ({found['share_with_a_false_find']:.2%})",
                         len(found["unjudged_finds"]),
                         ", ".join(f"{name} {n}" for name, n in found["texts_changed"].items()) or "-",
                         ", ".join(f"{name} {n}" for name, n in found["placeholders"].items()) or "-"])
    summary = table(["corpus", "ner", "rows", "rows changed", "share", "rows with a false find", "unjudged finds",
                     "texts changed", "placeholders"], rows)
    examples = table(
        ["corpus", "ner", "row", "change in context"],
        [[corpus, mode, example["row"], _short(example["context"], 200)]
         for mode in modes for corpus, found in results[mode].items() for example in found["examples"]],
    )
    unjudged = [[corpus, mode, find["row"], _short(find["context"], 200)]
                for mode in modes for corpus, found in results[mode].items() for find in found["unjudged_finds"]]
    note = (f"\n\nFinds not judged in {JUDGED_FINDS.name} (read them and add them there):\n\n"
            + table(["corpus", "ner", "row", "find in context"], unjudged[:40])) if unjudged else ""
    return f"{summary}  (goal: <= {CHANGED_ROWS_GOAL:.0%} of rows changed)\n\n{examples}{note}"


def report_cost(precision_results: dict, cost: dict, modes: Sequence[str]) -> str:
    rows = []
    for mode in modes:
        for corpus, timing in cost[mode].items():
            ner = precision_results[mode][corpus]["ner"]
            rows.append([corpus, mode, precision_results[mode][corpus]["rows"], f"{timing['median_ms']:.2f}",
                         f"{1000 / timing['median_ms']:,.0f}", f"{ner['share_rows_sent']:.1%}",
                         f"{ner['sentences_sent_per_row']:.2f}", f"{ner['share_chars_sent']:.1%}"])
    return table(["corpus", "ner", "rows", "ms/row (median)", "rows/s", "rows to NER", "sentences to NER per row",
                  "chars to NER"], rows)


# --------------------------------------------------------------------------------------------------------------
# Command line


def pii_config(mode: str, ner_model: str | None) -> PiiConfig:
    return PiiConfig(ner=mode) if ner_model is None else PiiConfig(ner=mode, ner_model=ner_model)


def evaluate(samples: Sequence[Sample], mode: str, ner_model: str | None = None) -> dict:
    outcomes = score(samples, redactor_for(pii_config(mode, ner_model)))
    names_and_addresses = [outcome for outcome in outcomes if outcome.planted.kind in GROUPS["names and addresses"]]
    return {"per_kind": recall_by(outcomes, lambda planted: planted.kind),
            "groups": group_recall(outcomes),
            "families": recall_by(names_and_addresses, lambda planted: f"{planted.kind} / {planted.family}"),
            "misses_by_source": misses_by_source(outcomes),
            "misses": misses(outcomes)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-kind", type=int, default=60, help="texts per kind (at least 3 per generator)")
    parser.add_argument("--ner", nargs="+", choices=("cued", "pairs", "all", "off"),
                        default=["cued", "pairs", "all", "off"],
                        help="NER modes to measure; the first one's misses and placeholders are shown")
    parser.add_argument("--ner-model", default=None,
                        help="the spaCy pipeline for names (an installed package or a directory; default: PiiConfig's)")
    parser.add_argument("--clean-rows", type=int, default=2000, help="clean rows (papers) per corpus, at most")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the clean rows per NER mode")
    parser.add_argument("--scitldr-dir", type=Path, default=SCITLDR_DIR)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    modes = list(dict.fromkeys(args.ner))

    started = time.perf_counter()
    samples = build_set(args.seed, args.per_kind)
    print(f"## Evaluation set (seed {args.seed})\n\n{report_set(samples)}\n")
    recall = {mode: evaluate(samples, mode, args.ner_model) for mode in modes}
    print(f"## Recall: redacted (exact value gone)\n\n{report_recall(recall, modes)}\n")
    print(f"## Misses (ner={modes[0]})\n\n{report_misses(recall[modes[0]])}\n")

    rows = clean_rows(args.clean_rows, args.seed, args.scitldr_dir)
    found: dict[str, dict] = {}
    cost: dict[str, dict] = {}
    judged = judged_finds()
    for mode in modes:
        redactor = redactor_for(pii_config(mode, args.ner_model))
        found[mode] = {corpus: precision(redactor, corpus_rows, CHANGES_SHOWN, judged)
                       for corpus, corpus_rows in rows.items()}
        cost[mode] = {}
        for corpus, corpus_rows in rows.items():
            timings = seconds_per_row(redactor, corpus_rows, args.repeat)
            cost[mode][corpus] = {"ms_per_row": [1000 * t for t in timings],
                                  "median_ms": 1000 * statistics.median(timings)}
    print(f"## Precision: clean rows changed\n\n{report_precision(found, modes)}\n")
    print(f"## Cost per clean row (median of {args.repeat})\n\n{report_cost(found, cost, modes)}\n")

    results = {
        "command": " ".join(["python -m bench.pii", *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor(), "python": platform.python_version()},
        "seed": args.seed, "per_kind": args.per_kind, "modes": modes,
        "ner_model": pii_config("cued", args.ner_model).ner_model,
        "set": {"texts": len(samples), "values": sum(len(sample.planted) for sample in samples),
                "examples": [asdict(sample) for sample in samples[:: max(1, len(samples) // 40)]]},
        "recall": recall, "precision": found, "cost": cost,
        "seconds": time.perf_counter() - started,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"Results: {args.results} ({results['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
