"""Near-duplicate prompts: MinHash signatures over word sets, banded LSH, grouped with union-find.

Exact duplicates never reach the table (the normalised hash is unique). Near-duplicates - the same
prompt with a few words changed, or its keyword list reordered - are found here without comparing
all pairs: prompts whose signatures agree on a whole band land in one bucket, each bucket member is
checked against the bucket's oldest prompt, and pairs above the Jaccard threshold are joined into
groups. The oldest prompt of a group is kept; the others point at it with `near_duplicate_of`.

Memory is one signature row per prompt (NUM_PERM uint32, 480 bytes), not the prompts' texts.
"""

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction
from django.db.models import Count, Max

from annotation.models import Prompt
from annotation.prompts.services.import_sql import near_duplicates_link

NUM_PERM = 120
BANDS = 24
ROWS_PER_BAND = NUM_PERM // BANDS
# Word-set Jaccard similarity from which two prompts count as near-duplicates. With 24 bands of 5
# rows a pair at 0.7 shares a band with probability 0.98, one at 0.4 with 0.2 (then verified, dropped).
NEAR_DUPLICATE_JACCARD = 0.7
# Prompts of fewer words than this are too short to call "the same with a few words changed".
MIN_WORDS = 4
# Small batches: the (NUM_PERM, words) intermediate arrays of one batch stay a few MB.
_SIGNATURE_BATCH = 500
_VERIFY_CHUNK = 20_000
_MARK_CHUNK = 5000
_MERSENNE_PRIME = np.uint64(4294967311)  # the first prime above 2**32
_WORD = re.compile(r"\w+")
# Fixed seed: the same text always gets the same signature, across processes and runs.
_rng = np.random.default_rng(20240514)
_A = _rng.integers(1, 2**31, size=NUM_PERM, dtype=np.uint64)
_B = _rng.integers(0, 2**32, size=NUM_PERM, dtype=np.uint64)
_BAND_MIX = _rng.integers(1, 2**63, size=ROWS_PER_BAND, dtype=np.uint64) | np.uint64(1)


def prompt_words(normalized_text: str) -> set[str]:
    return set(_WORD.findall(normalized_text))


def minhash_signatures(texts: list[str]) -> np.ndarray:
    """Signatures of normalised texts, shape (len(texts), NUM_PERM), uint32."""
    return _signatures([prompt_words(text) or {text} for text in texts])


def _signatures(word_sets: list[set[str]]) -> np.ndarray:
    """Signatures of non-empty word sets: all the batch's words hashed, permuted and reduced at once."""
    offsets = np.zeros(len(word_sets), dtype=np.int64)
    np.cumsum([len(words) for words in word_sets[:-1]], out=offsets[1:])
    words = [word for word_set in word_sets for word in word_set]
    token_hashes = np.fromiter((zlib.crc32(word.encode("utf-8")) for word in words), dtype=np.uint64, count=len(words))
    # (NUM_PERM, tokens): a*x+b stays below 2**63 because a < 2**31 and x < 2**32.
    permuted = (_A[:, None] * token_hashes[None, :] + _B[:, None]) % _MERSENNE_PRIME
    minima = np.minimum.reduceat(permuted, offsets, axis=1)
    return minima.T.astype(np.uint32)


@dataclass
class SignatureIndex:
    ids: np.ndarray  # (n,) int64, ascending
    signatures: np.ndarray  # (n, NUM_PERM) uint32
    eligible: np.ndarray  # (n,) bool: long enough to be compared


def signature_index_build(rows: Iterable[tuple[int, str]], expected: int = 0) -> SignatureIndex:
    """Signatures for (id, normalised text) rows given in ascending id order.

    `expected` (the row count, when known) sizes the arrays once, so the signatures are not held twice
    while batches are joined; more rows than expected still fit (the arrays grow).
    """
    index = _empty_index(expected)
    filled = 0
    batch: list[tuple[int, str]] = []

    def flush() -> None:
        nonlocal index, filled
        end = filled + len(batch)
        if end > len(index.ids):
            index = _grown(index, max(end, 2 * len(index.ids)))
        index.ids[filled:end] = np.fromiter((row[0] for row in batch), dtype=np.int64, count=len(batch))
        word_sets = [prompt_words(row[1]) for row in batch]
        index.eligible[filled:end] = np.fromiter((len(words) >= MIN_WORDS for words in word_sets), dtype=bool)
        # A text without words (only punctuation) still gets one shingle, so no segment is empty.
        index.signatures[filled:end] = _signatures([w or {row[1]} for w, row in zip(word_sets, batch, strict=True)])
        filled = end
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= _SIGNATURE_BATCH:
            flush()
    if batch:
        flush()
    return SignatureIndex(index.ids[:filled], index.signatures[:filled], index.eligible[:filled])


def _empty_index(size: int) -> SignatureIndex:
    return SignatureIndex(np.empty(size, np.int64), np.empty((size, NUM_PERM), np.uint32), np.zeros(size, bool))


def _grown(index: SignatureIndex, size: int) -> SignatureIndex:
    grown = _empty_index(size)
    grown.ids[: len(index.ids)], grown.signatures[: len(index.ids)] = index.ids, index.signatures
    grown.eligible[: len(index.ids)] = index.eligible
    return grown


def _band_pairs(index: SignatureIndex, band: int) -> tuple[np.ndarray, np.ndarray]:
    """(leader rows, member rows) sharing this band's bucket; the leader is the bucket's oldest prompt."""
    rows = np.flatnonzero(index.eligible)
    if len(rows) < 2:
        return rows[:0], rows[:0]
    columns = index.signatures[rows, band * ROWS_PER_BAND : (band + 1) * ROWS_PER_BAND].astype(np.uint64)
    keys = (columns * _BAND_MIX[None, :]).sum(axis=1)  # wraps: a collision only adds a candidate to verify
    order = np.argsort(keys, kind="stable")  # stable: ascending ids stay ascending within a bucket
    sorted_keys = keys[order]
    new_bucket = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    bucket_start = np.flatnonzero(new_bucket)
    leaders = order[bucket_start][np.cumsum(new_bucket) - 1]
    members = leaders != order
    return rows[leaders[members]], rows[order[members]]


def _similar(index: SignatureIndex, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    keep = np.zeros(len(left), dtype=bool)
    for start in range(0, len(left), _VERIFY_CHUNK):
        chunk = slice(start, start + _VERIFY_CHUNK)
        agreement = (index.signatures[left[chunk]] == index.signatures[right[chunk]]).mean(axis=1)
        keep[chunk] = agreement >= NEAR_DUPLICATE_JACCARD
    return keep


def _find(parent: dict[int, int], row: int) -> int:
    root = row
    while parent.get(root, root) != root:
        root = parent[root]
    while row != root:  # path compression keeps later finds short
        parent[row], row = root, parent.get(row, row)
    return root


def _candidate_pairs(index: SignatureIndex) -> tuple[np.ndarray, np.ndarray]:
    """(leader rows, member rows) sharing a bucket in any band, each pair once."""
    size = max(len(index.ids), 1)
    # One int64 code per pair (leader * size + member): similar prompts share most bands, so most
    # pairs come up many times; each is kept (and verified) once.
    codes = [leaders * size + members for leaders, members in (_band_pairs(index, b) for b in range(BANDS))]
    pairs = np.unique(np.concatenate(codes))
    return pairs // size, pairs % size


def near_duplicate_groups(index: SignatureIndex) -> dict[int, list[int]]:
    """{kept prompt id: [near-duplicate ids]}; the kept prompt is the oldest (lowest id) of its group."""
    parent: dict[int, int] = {}
    leaders, members = _candidate_pairs(index)
    similar = _similar(index, leaders, members)
    # Union by smaller root: each group's root is its lowest row, whatever the order of the pairs.
    for leader, member in zip(leaders[similar].tolist(), members[similar].tolist(), strict=True):
        root_a, root_b = _find(parent, leader), _find(parent, member)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    groups: dict[int, list[int]] = {}
    for row in list(parent):
        root = _find(parent, row)
        if root != row:
            groups.setdefault(int(index.ids[root]), []).append(int(index.ids[row]))
    return groups


@dataclass
class DedupeResult:
    groups: int = 0
    newly_marked: list[int] = field(default_factory=list)
    kept_of: dict[int, int] = field(default_factory=dict)  # member id -> its group's kept prompt id


def prompt_near_duplicates_mark(*, reject_from_id: int = 0) -> DedupeResult:
    """Link every near-duplicate to its group's kept prompt; pending ones from id `reject_from_id` on are
    rejected as duplicates (older pending ones stay for a person to decide: see `near_duplicates_link`).

    Idempotent: prompts already linked are left alone, so a second run marks nothing new.
    """
    # Prompts stored after this count (another import) wait for the next run.
    last = Prompt.objects.aggregate(last=Max("id"), count=Count("id"))
    stored = Prompt.objects.filter(id__lte=last["last"] or 0).order_by("id")
    rows = stored.values_list("id", "normalized_text").iterator(chunk_size=5000)
    groups = near_duplicate_groups(signature_index_build(rows, expected=last["count"]))
    result = DedupeResult(groups=len(groups))
    pairs = sorted((member, kept) for kept, members in groups.items() for member in members)
    result.kept_of = dict(pairs)
    with transaction.atomic():
        # One UPDATE per chunk that links and rejects at once, skipping prompts linked already
        # (bulk_update's per-row CASE, then one UPDATE per group, cost most of the dedupe time).
        for start in range(0, len(pairs), _MARK_CHUNK):
            chunk = pairs[start : start + _MARK_CHUNK]
            result.newly_marked.extend(near_duplicates_link(chunk, reject_from_id=reject_from_id))
    return result
