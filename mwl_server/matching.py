"""C-FIND matching of PS3.4 C.2.2.2 (used by Annex K, Modality Worklist) on pydicom datasets.

Keys are compared as decoded text: pydicom decodes the query with the query's SpecificCharacterSet and
the item with the station's, so a Thai name sent as ISO_IR 166 matches one stored as ISO_IR 192.

- Universal matching: an empty key (or `*` on a VR that takes wildcards) matches everything.
- Single value matching: the key equals the value; person names ignore case (C.2.2.2.1 allows it;
  wlmscpfs is case-sensitive, Orthanc is not).
- Wildcard matching: `*` (any run, also empty) and `?` (one character) on AE, CS, LO, LT, PN, SH, ST,
  UC and UT.
- Range matching on DA, TM and DT: `a-b`, `a-` and `-b`, bounds included. A truncated time bound is
  padded with zeros, so `0900-1200` runs from 09:00:00 up to 12:00:00 exactly (as DCMTK does).
  Date and time keys are matched independently (no combined date-time matching is negotiated).
- List of UID matching: a UI key with several values matches any of them.
- Sequence matching: a sequence with an item matches when any item of the candidate's sequence matches
  that item's keys; a sequence with no item, or one empty item, is universal.

A key the server cannot read (a malformed date, an unknown character set) raises QueryError, which the
server turns into a failure status instead of a silently wrong answer.
"""

from __future__ import annotations

import _sre
import copy
import functools
import re
from datetime import datetime
from re._casefix import _EXTRA_CASES

from pydicom.charset import python_encoding
from pydicom.dataelem import DataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag

WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
SPECIFIC_CHARACTER_SET = Tag(0x0008, 0x0005)
# Keys that steer the query rather than select items.
CONTROL_TAGS = frozenset({SPECIFIC_CHARACTER_SET, Tag(0x0008, 0x0052), Tag(0x0008, 0x0201)})

_DATE = re.compile(r"^\d{8}$")
_TIME = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?$")
# How `re` folds case under IGNORECASE (private to `re`, checked against `re` itself by the tests):
# the simple lower case, plus a few equivalences it adds (i and ı, s and ſ, ...).
_IGNORECASE_FIXES = _EXTRA_CASES
_DATETIME = re.compile(r"^\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?$")


class QueryError(ValueError):
    """The identifier cannot be matched as sent; the message says which key and why."""


class QueryTooLarge(QueryError):
    """The identifier is bigger than any modality's query: refused before matching anything."""


# A modality's query has a few dozen keys (PS3.4 Table K.6-1) of at most 64 characters (a PN up to three
# groups of 64). Far bigger ones only cost the server time, so they are refused (issue 13).
MAX_QUERY_ELEMENTS = 200
MAX_SEQUENCE_DEPTH = 3
MAX_KEY_LENGTH = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "PN": 3 * 64 + 2}  # per value
MAX_OTHER_KEY_LENGTH = 1024


def _is_key(elem: DataElement) -> bool:
    return elem.tag not in CONTROL_TAGS and not elem.tag.is_private and elem.tag.element != 0


def _values(value) -> list:
    if value is None:
        return []
    if isinstance(value, MultiValue | list | tuple):
        return [v for v in value if v not in (None, "")]
    return [] if value == "" else [value]


def is_universal(elem: DataElement) -> bool:
    """An empty key, or `*` alone on a VR that takes wildcards: matches every item."""
    if elem.VR == "SQ":
        return len(elem.value) == 0 or all(
            is_universal(sub) for item in elem.value for sub in item if _is_key(sub)
        )
    values = [str(v).strip() for v in _values(elem.value)]
    if not values:
        return True
    return elem.VR in WILDCARD_VRS and all(v == "*" for v in values)


def single_value(elem: DataElement | None) -> str | None:
    """The key's value when it is a plain single value (no wildcard, range or list), else None."""
    if elem is None or elem.VR == "SQ" or is_universal(elem):
        return None
    values = _values(elem.value)
    if len(values) != 1:
        return None
    value = str(values[0]).strip()
    if elem.VR in WILDCARD_VRS and ("*" in value or "?" in value):
        return None
    if elem.VR in ("DA", "TM", "DT") and "-" in value:
        return None
    return value


# --- text ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _wildcard_pieces(pattern: str, ignore_case: bool) -> tuple[tuple[re.Pattern, int], ...]:
    """`pattern` split at its `*`s: each piece compiled without a quantifier (`?` is `.`), and its length.

    A regular expression with `.*` per `*` backtracks: 14 stars against a 14-letter name that does not
    match try about 40 million ways, all while holding the interpreter. The pieces are matched one after
    the other instead (wildcard_match), in O(len(pattern) * len(value)) at worst, whatever the pattern.
    """
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return tuple(
        (re.compile("".join("." if ch == "?" else re.escape(ch) for ch in piece), flags), len(piece))
        for piece in pattern.split("*")
    )


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Does all of `value` match `pattern`, `*` being any run of characters (also none) and `?` one?

    The first piece must match at the start and the last at the end; each piece between them is taken
    at its leftmost place after the previous one, since a later place never leaves more room for the
    rest. A piece matches exactly as many characters as it has (also ignoring case: `re` folds case one
    character at a time), so where the last piece starts is known before the middle ones are placed.
    """
    pieces = _wildcard_pieces(pattern, ignore_case)
    if len(pieces) == 1:
        return pieces[0][0].fullmatch(value) is not None
    (first, position), *middle, (last, last_length) = pieces
    end = len(value) - last_length
    if end < position or first.match(value) is None:
        return False
    for piece, length in middle:
        if length == 0:
            continue  # two stars in a row
        found = piece.search(value, position, end)
        if found is None:
            return False
        position = found.end()
    return last.fullmatch(value, end) is not None


def match_text(key: str, value: str, *, vr: str) -> bool:
    """Single value or wildcard matching of one text key against one value."""
    key, value = key.strip(), value.strip()
    if vr == "PN":
        # Person names: any component group may match (alphabetic, ideographic, phonetic), and
        # trailing empty components ("Jaidee^Somchai^^") do not matter.
        candidates = {value, *value.split("=")}
        candidates |= {c.rstrip("^") for c in candidates}
        key = key.rstrip("^") if not key.endswith("*") else key
        return any(wildcard_match(key, c, ignore_case=True) for c in candidates if c)
    if vr in WILDCARD_VRS and ("*" in key or "?" in key):
        return wildcard_match(key, value)
    return key == value


def pn_family_start(key: str) -> tuple[str, bool] | None:
    """What every person name that match_text accepts for `key` starts its family name with: the
    key's literal characters up to its first `*`, `?` or `^` (whitespace stripped as match_text does),
    and whether the family name ends there (a `^` or the key's end came first, not a wildcard: `?` may
    stand for the `^` itself). None when the key starts with a wildcard and so says nothing.
    """
    key = key.strip()
    if not key.endswith("*"):
        key = key.rstrip("^")
    for i, ch in enumerate(key):
        if ch in "*?":
            return (key[:i], False) if i else None
        if ch == "^":
            return key[:i], True
    return key, True


# Escaped with a backslash, the same in PostgreSQL's and Python's regular expressions (and no other
# character is: PostgreSQL takes a backslash before a letter or digit as an escape of its own).
_REGEX_SPECIAL = frozenset("\\^$.|?*+()[]{}-")
_TOLOWER_LIMIT = 0x20000  # no cased character above (checked by a test over all of Unicode)


@functools.cache
def _same_lower() -> dict[int, frozenset[str]]:
    """Simple lower case (what `re` compares under IGNORECASE) -> every character that has it."""
    table: dict[int, set[str]] = {}
    for cp in range(_TOLOWER_LIMIT):
        table.setdefault(_sre.unicode_tolower(cp), set()).add(chr(cp))
    return {lower: frozenset(chars) for lower, chars in table.items() if len(chars) > 1}


def case_variants(ch: str) -> frozenset[str]:
    """Every character that `ch` matches in match_text's case-insensitive wildcard_match.

    `re` with IGNORECASE matches a character whose simple lower case is `ch`'s, or one of the few
    equivalences it adds (i and the dotless ı, s and ſ, ...: re._casefix).
    """
    lower = _sre.unicode_tolower(ord(ch))
    lowers = {lower, *_IGNORECASE_FIXES.get(lower, ())}
    return frozenset({ch}).union(*(_same_lower().get(lo, {chr(lo)}) for lo in lowers))


def case_class(ch: str) -> str:
    """`ch` as a regular expression (PostgreSQL's and Python's) matching each of its case variants."""
    variants = sorted(case_variants(ch))
    escaped = "".join("\\" + v if v in _REGEX_SPECIAL else v for v in variants)
    return escaped if len(variants) == 1 else f"[{escaped}]"


# --- dates and times ----------------------------------------------------------------------------


def _check_date(value: str, tag_name: str) -> str:
    if not _DATE.match(value):
        raise QueryError(f"{tag_name}: {value!r} is not a date (YYYYMMDD)")
    try:
        datetime.strptime(value, "%Y%m%d")
    except ValueError:
        raise QueryError(f"{tag_name}: {value!r} is not a valid date") from None
    return value


def _norm_time(value: str, tag_name: str) -> str:
    """HH[MM[SS[.F{1,6}]]] -> HHMMSS.FFFFFF (missing parts are zeros), validated."""
    match = _TIME.match(value.strip())
    if not match:
        raise QueryError(f"{tag_name}: {value!r} is not a time (HHMMSS)")
    hh, mm, ss, frac = match.groups()
    if int(hh) > 23 or int(mm or 0) > 59 or int(ss or 0) > 60:
        raise QueryError(f"{tag_name}: {value!r} is not a valid time")
    return f"{hh}{mm or '00'}{ss or '00'}.{(frac or '.')[1:].ljust(6, '0')}"


def _norm_datetime(value: str, tag_name: str) -> str:
    if not _DATETIME.match(value):
        raise QueryError(f"{tag_name}: {value!r} is not a date-time")
    value = re.sub(r"[+-]\d{4}$", "", value)
    date_part, _, frac = value.partition(".")
    return date_part.ljust(14, "0") + "." + frac.ljust(6, "0")


def split_range(key: str, tag_name: str, vr: str = "DA") -> tuple[str, str]:
    """'a-b', 'a-', '-b' or 'a' -> (lower, upper); '' for an open end.

    A DT value may end in a UTC offset (`20261125093000-0500`) whose '-' is not the range's: for DT the
    '-' that splits the key into two valid date-times is the separator (split_dt_range).
    """
    key = key.strip()
    if vr == "DT":
        return split_dt_range(key, tag_name)
    if key.count("-") > 1:
        raise QueryError(f"{tag_name}: {key!r} is not a range (a-b, a- or -b)")
    if "-" not in key:
        return key, key
    lower, upper = (part.strip() for part in key.split("-"))
    if not lower and not upper:
        raise QueryError(f"{tag_name}: {key!r} is a range without bounds")
    return lower, upper


def _is_datetime(value: str) -> bool:
    """A DT value whose UTC offset, if any, is a real one (-1200 to +1400, PS3.5 Table 6.2-1)."""
    match = _DATETIME.match(value)
    if not match:
        return False
    offset = match.group(7)
    if offset is None:
        return True
    hours, minutes = int(offset[1:3]), int(offset[3:])
    return minutes < 60 and hours * 60 + minutes <= (14 * 60 if offset[0] == "+" else 12 * 60)


def split_dt_range(key: str, tag_name: str) -> tuple[str, str]:
    """A DT key as (lower, upper): a single date-time (also one with a negative offset), or the one
    split at a '-' that leaves a valid date-time (or nothing) on each side."""
    if "-" not in key or _is_datetime(key):
        return key, key  # a malformed single value is refused by whoever normalises it
    splits = [
        (key[:i], key[i + 1 :])
        for i, ch in enumerate(key)
        if ch == "-"
        and (key[:i] or key[i + 1 :])
        and all(not part or _is_datetime(part) for part in (key[:i], key[i + 1 :]))
    ]
    if len(splits) != 1:
        raise QueryError(f"{tag_name}: {key!r} is not a range (a-b, a- or -b) nor a date-time")
    return splits[0]


def _in_range(key: str, value: str, norm, tag_name: str, vr: str) -> bool:
    lower, upper = split_range(key, tag_name, vr)
    low = norm(lower, tag_name) if lower else None
    high = norm(upper, tag_name) if upper else None
    if low and high and low > high:
        raise QueryError(f"{tag_name}: the range {key!r} ends before it starts")
    try:
        current = norm(value.strip(), tag_name)
    except QueryError:
        return False  # a malformed stored value never matches a non-universal key
    return (low is None or current >= low) and (high is None or current <= high)


def match_date(key: str, value: str, tag_name: str = "date") -> bool:
    return _in_range(key, value, _check_date, tag_name, "DA")


def match_time(key: str, value: str, tag_name: str = "time") -> bool:
    return _in_range(key, value, _norm_time, tag_name, "TM")


def match_datetime(key: str, value: str, tag_name: str = "date-time") -> bool:
    return _in_range(key, value, _norm_datetime, tag_name, "DT")


# --- elements and datasets -----------------------------------------------------------------------


def _name(elem: DataElement) -> str:
    return elem.keyword or str(elem.tag)


def validate_key(elem: DataElement) -> None:
    """Raise QueryError when a matching key is malformed, whatever the candidates."""
    if elem.VR == "SQ":
        if len(elem.value) > 1:
            raise QueryError(f"{_name(elem)}: a sequence key holds at most one item")
        for item in elem.value:
            for sub in item:
                if _is_key(sub):
                    validate_key(sub)
        return
    if is_universal(elem):
        return
    norm = {"DA": _check_date, "TM": _norm_time, "DT": _norm_datetime}.get(elem.VR)
    if norm is None:
        return
    values = _values(elem.value)
    if len(values) > 1:
        raise QueryError(f"{_name(elem)}: a {elem.VR} key takes one value or one range")
    lower, upper = split_range(str(values[0]), _name(elem), elem.VR)
    low = norm(lower, _name(elem)) if lower else ""
    high = norm(upper, _name(elem)) if upper else ""
    if low and high and low > high:
        raise QueryError(f"{_name(elem)}: the range {values[0]!r} ends before it starts")


def validate_charset(query: Dataset) -> None:
    terms = query.get("SpecificCharacterSet") or ""
    for term in [terms] if isinstance(terms, str) else list(terms):
        term = (term or "").strip()
        if term and term not in python_encoding:
            raise QueryError(f"SpecificCharacterSet: unknown character set {term!r}")


def validate_size(query: Dataset) -> None:
    """Raise QueryTooLarge when the query has too many elements, too deep sequences or too long a key."""
    count = 0

    def walk(ds: Dataset, depth: int) -> None:
        nonlocal count
        if depth > MAX_SEQUENCE_DEPTH:
            raise QueryTooLarge(f"sequences nested more than {MAX_SEQUENCE_DEPTH} deep")
        for elem in ds:
            count += 1
            if count > MAX_QUERY_ELEMENTS:
                raise QueryTooLarge(f"more than {MAX_QUERY_ELEMENTS} attributes")
            if elem.VR == "SQ":
                for item in elem.value or []:
                    walk(item, depth + 1)
                continue
            # Each value within its VR's length, all of them within MAX_OTHER_KEY_LENGTH.
            lengths = [len(str(v)) for v in _values(elem.value)]
            limit = MAX_KEY_LENGTH.get(elem.VR, MAX_OTHER_KEY_LENGTH)
            if max(lengths, default=0) > limit or sum(lengths) > MAX_OTHER_KEY_LENGTH:
                raise QueryTooLarge(f"{_name(elem)}: longer than {limit} characters")

    walk(query, 1)


def validate_query(query: Dataset) -> None:
    """Check the size, the character set and every matching key; QueryError on the first problem."""
    validate_size(query)
    validate_charset(query)
    for elem in query:
        if _is_key(elem):
            validate_key(elem)


def element_matches(key: DataElement, candidate: DataElement | None) -> bool:
    """Does one matching key match the candidate item's element (None when the item lacks it)?"""
    if is_universal(key):
        return True
    if candidate is None:
        return False
    if key.VR == "SQ":
        query_item = key.value[0]
        return any(dataset_matches(query_item, item) for item in candidate.value or [])
    wanted = _values(key.value)
    have = [str(v) for v in _values(candidate.value)]
    if not have:
        return False
    name = _name(key)
    for want in wanted:
        want = str(want)
        for value in have:
            if key.VR == "DA" and match_date(want, value, name):
                return True
            if key.VR == "TM" and match_time(want, value, name):
                return True
            if key.VR == "DT" and match_datetime(want, value, name):
                return True
            if key.VR in ("DA", "TM", "DT"):
                continue
            if key.VR in WILDCARD_VRS and match_text(want, value, vr=key.VR):
                return True
            if key.VR not in WILDCARD_VRS and want.strip() == value.strip():
                return True
    return False


def dataset_matches(query: Dataset, item: Dataset) -> bool:
    """Does `item` match every key of `query` (at this level and inside its sequences)?"""
    for key in query:
        if not _is_key(key):
            continue
        if not element_matches(key, item.get(key.tag)):
            return False
    return True


def matching_keys(query: Dataset) -> Dataset:
    """`query` without its universal keys (nor its control keys), at every level: what an item must
    match. dataset_matches(matching_keys(q), item) == dataset_matches(q, item), but it reads (and so
    decodes) only the item's elements that can make a difference: for a match-all query, none.
    """
    keys = Dataset()
    for key in query:
        if not _is_key(key) or is_universal(key):
            continue
        if key.VR == "SQ":
            keys.add_new(key.tag, "SQ", Sequence([matching_keys(key.value[0])]))
        else:
            keys.add(key)
    return keys


def answer_for(query: Dataset, item: Dataset) -> Dataset:
    """The C-FIND answer: the keys of `query` with `item`'s values, plus `item`'s character set.

    A key the item lacks comes back empty. A sequence key with no item, or one empty item, returns the
    item's whole sequence (a modality sends an empty SPS item to get every SPS attribute).

    Elements pydicom has not decoded yet (an item read from its encoded bytes) are put into the answer
    as they are: their bytes are the item's, so nothing is decoded or copied for a key that is only
    returned, and the answer carries exactly the bytes the export wrote.
    """
    answer = Dataset()
    if "SpecificCharacterSet" in item:
        answer.SpecificCharacterSet = item.SpecificCharacterSet
    _copy_keys(query, item, answer)
    return answer


def _copy_keys(query: Dataset, item: Dataset, answer: Dataset) -> None:
    for key in query:
        if not _is_key(key):
            continue
        have = item.get_item(key.tag) if key.tag in item else None
        if key.VR == "SQ":
            if have is not None:
                have = item[key.tag]  # a sequence is decoded as its item is read
            if have is None:
                answer.add_new(key.tag, "SQ", Sequence())
            elif len(key.value) == 0 or len(key.value[0]) == 0:
                answer.add_new(key.tag, "SQ", Sequence([_whole(candidate) for candidate in have.value]))
            else:
                items = []
                for candidate in have.value:
                    sub = Dataset()
                    _copy_keys(key.value[0], candidate, sub)
                    items.append(sub)
                answer.add_new(key.tag, "SQ", Sequence(items))
        elif have is None:
            answer.add_new(key.tag, key.VR, None)
        else:
            answer[key.tag] = _share(have)


def _share(elem):
    # A raw element is an immutable tuple of bytes: shared (but not a raw sequence, whose items' bytes
    # are in the item's transfer syntax: copied decoded). A decoded one is copied, so that changing
    # the answer never changes the item.
    return (
        elem
        if elem.is_raw and elem.VR != "SQ"
        else copy.deepcopy(convert_raw_data_element(elem) if elem.is_raw else elem)
    )


def _whole(item: Dataset) -> Dataset:
    """A copy of a sequence item, sharing its raw elements (see _share)."""
    whole = Dataset()
    for tag in item.keys():
        elem = item.get_item(tag)
        if elem.VR == "SQ":
            # A raw sequence holds its items' bytes in the item's transfer syntax: decoded, and its
            # items copied the same way, so that each is written in the answer's.
            whole.add_new(tag, "SQ", Sequence([_whole(sub) for sub in item[tag].value]))
        else:
            whole[tag] = _share(elem)
    return whole


def mark_encoded_as(answer: Dataset, *, implicit_vr: bool, little_endian: bool) -> Dataset:
    """Tell pydicom that `answer`'s raw elements may be written as they are in the given transfer
    syntax, and return it.

    pydicom decodes every raw element and encodes it again unless the dataset's original encoding is
    the one being written (filewriter.write_dataset). The raw elements of an item read from its Explicit
    VR Little Endian bytes hold the same value bytes in Implicit VR Little Endian (only the element
    header differs, and pydicom writes the header), so for either little endian syntax the bytes are
    copied; for Big Endian nothing is marked and pydicom converts them.
    """
    if not little_endian:
        return answer
    answer.set_original_encoding(implicit_vr, True, answer._character_set)
    for elem in answer.values():
        if not elem.is_raw and elem.VR == "SQ":
            for sub in elem.value:
                mark_encoded_as(sub, implicit_vr=implicit_vr, little_endian=True)
    return answer
