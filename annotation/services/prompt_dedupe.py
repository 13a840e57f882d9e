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
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction

from annotation.models import Prompt, PromptStatus, RejectionReason

NUM_PERM = 120
BANDS = 24
ROWS_PER_BAND = NUM_PERM // BANDS
# Word-set Jaccard similarity from which two prompts count as near-duplicates. With 24 bands of 5
# rows a pair at 0.7 shares a band with probability 0.98, one at 0.4 with 0.2 (then verified, dropped).
NEAR_DUPLICATE_JACCARD = 0.7
# Prompts of fewer words than this are too short to call "the same with a few words changed".
MIN_WORDS = 4
# Small batches: the (NUM_PERM, words) intermediate arrays of one batch stay a few MB.
_SIGNATURE_BATCH = 250
_VERIFY_CHUNK = 20_000
_MARK_CHUNK = 500
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
    hashes: list[int] = []
    offsets: list[int] = []
    for text in texts:
        offsets.append(len(hashes))
        # A text without words (only punctuation) still gets one shingle, so no segment is empty.
        words = prompt_words(text) or {text}
        hashes.extend(zlib.crc32(word.encode("utf-8")) for word in words)
    token_hashes = np.asarray(hashes, dtype=np.uint64)
    # (NUM_PERM, tokens): a*x+b stays below 2**63 because a < 2**31 and x < 2**32.
    permuted = (_A[:, None] * token_hashes[None, :] + _B[:, None]) % _MERSENNE_PRIME
    minima = np.minimum.reduceat(permuted, np.asarray(offsets, dtype=np.int64), axis=1)
    return minima.T.astype(np.uint32)


@dataclass
class SignatureIndex:
    ids: np.ndarray  # (n,) int64, ascending
    signatures: np.ndarray  # (n, NUM_PERM) uint32
    eligible: np.ndarray  # (n,) bool: long enough to be compared


def signature_index_build(rows: Iterable[tuple[int, str]]) -> SignatureIndex:
    """Signatures for (id, normalised text) rows given in ascending id order."""
    id_parts, signature_parts, eligible_parts = [], [], []
    batch: list[tuple[int, str]] = []

    def flush() -> None:
        id_parts.append(np.fromiter((row[0] for row in batch), dtype=np.int64, count=len(batch)))
        signature_parts.append(minhash_signatures([row[1] for row in batch]))
        eligible_parts.append(np.fromiter((len(prompt_words(row[1])) >= MIN_WORDS for row in batch), dtype=bool))
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= _SIGNATURE_BATCH:
            flush()
    if batch:
        flush()
    if not id_parts:
        return SignatureIndex(np.empty(0, np.int64), np.empty((0, NUM_PERM), np.uint32), np.empty(0, bool))
    return SignatureIndex(np.concatenate(id_parts), np.concatenate(signature_parts), np.concatenate(eligible_parts))


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


def near_duplicate_groups(index: SignatureIndex) -> dict[int, list[int]]:
    """{kept prompt id: [near-duplicate ids]}; the kept prompt is the oldest (lowest id) of its group."""
    parent: dict[int, int] = {}
    for band in range(BANDS):
        leaders, members = _band_pairs(index, band)
        similar = _similar(index, leaders, members)
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


def prompt_near_duplicates_mark() -> DedupeResult:
    """Link every near-duplicate to its group's kept prompt; pending ones are rejected as duplicates.

    Idempotent: prompts already linked are left alone, so a second run marks nothing new.
    """
    rows = Prompt.objects.order_by("id").values_list("id", "normalized_text").iterator(chunk_size=2000)
    groups = near_duplicate_groups(signature_index_build(rows))
    result = DedupeResult(groups=len(groups))
    kept_of = {member: kept for kept, members in groups.items() for member in members}
    members = list(kept_of)
    with transaction.atomic():
        for start in range(0, len(members), _MARK_CHUNK):
            chunk = members[start : start + _MARK_CHUNK]
            result.newly_marked.extend(_members_mark(chunk, kept_of))
    return result


def _members_mark(member_ids: list[int], kept_of: dict[int, int]) -> list[int]:
    unmarked = list(
        Prompt.objects.select_for_update()
        .filter(id__in=member_ids, near_duplicate_of__isnull=True)
        .values_list("id", flat=True)
    )
    # One UPDATE per kept prompt: bulk_update's per-row CASE expression cost most of the dedupe time at 100k rows.
    members_of: dict[int, list[int]] = defaultdict(list)
    for prompt_id in unmarked:
        members_of[kept_of[prompt_id]].append(prompt_id)
    for kept, members in members_of.items():
        Prompt.objects.filter(id__in=members).update(near_duplicate_of_id=kept)
    # A person's decision stands; only prompts nobody judged yet are set aside.
    Prompt.objects.filter(id__in=unmarked, status=PromptStatus.PENDING).update(
        status=PromptStatus.REJECTED, rejection_reasons=[RejectionReason.DUPLICATE.value]
    )
    return unmarked
