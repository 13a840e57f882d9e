"""The lean SQL paths of the prompt import and dedupe give the same results as the ORM would."""

import json

import numpy as np
import pytest
from django.conf import settings

from annotation.models import Category, Prompt, PromptOrigin, PromptStatus
from annotation.prompts.services import import_sql as prompt_import_sql
from annotation.prompts.services.dedupe import minhash_signatures, signature_index_build
from annotation.prompts.services.imports import prompts_import

pytestmark = pytest.mark.django_db


def _jsonl(tmp_path, lines, name="prompts.jsonl", newline_at_end=True):
    path = tmp_path / name
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    path.write_text(text + ("\n" if newline_at_end else ""), encoding="utf-8")
    return path


def test_lean_insert_stores_the_fields_the_orm_would(tmp_path):
    sub = Category.objects.filter(parent__slug="animals").first()
    tricky = 'a "quoted" \\ back-slashed prompt with émojis 🦊 and 漢字, oil painting'
    rows = [{"prompt": tricky, "source": "lab", "source_id": 7, "category": sub.slug}, {"prompt": "a plain teapot"}]
    summary = prompts_import(path=_jsonl(tmp_path, rows), source="default-source")
    assert (summary.imported, summary.exact_duplicates, summary.invalid) == (2, 0, 0)
    fox, teapot = Prompt.objects.order_by("id")
    assert (fox.text, fox.source, fox.source_id, fox.category.slug, fox.subcategory) == (
        tricky,
        "lab",
        "7",
        "animals",
        sub,
    )
    assert (teapot.source, teapot.source_id, teapot.category, teapot.subcategory) == ("default-source", "", None, None)
    for prompt in (fox, teapot):
        assert (prompt.status, prompt.origin, prompt.rejection_reasons) == (
            PromptStatus.PENDING,
            PromptOrigin.COLLECTED,
            [],
        )
        assert (prompt.reviews_required, prompt.reviews_done, prompt.needs_reviewer) == (
            settings.PROMPT_REVIEWS_REQUIRED,
            0,
            False,
        )
        assert prompt.created_at is not None and prompt.updated_at is not None
        assert prompt.near_duplicate_of_id is None and prompt.augmentation_job_id is None
    # The stored hash is the one the ORM path computes: the same text is an exact duplicate there.
    again = prompts_import(path=_jsonl(tmp_path, [{"prompt": tricky.upper() + " ."}], name="again.jsonl"))
    assert (again.imported, again.exact_duplicates) == (0, 1)


def test_stored_source_id_in_a_batch_falls_back_and_keeps_the_good_rows(tmp_path):
    prompts_import(path=_jsonl(tmp_path, [{"prompt": "a stored prompt", "source": "lab", "source_id": "1"}]))
    lines = [
        {"prompt": "a new prompt about a harbour", "source": "lab", "source_id": "2"},
        {"prompt": "another text reusing id one", "source": "lab", "source_id": "1"},
        {"prompt": "a stored prompt", "source": "lab", "source_id": "1"},
        {"prompt": "a new prompt about a meadow", "source": "lab", "source_id": "3"},
    ]
    summary = prompts_import(path=_jsonl(tmp_path, lines, name="second.jsonl"))
    assert (summary.rows_read, summary.imported, summary.exact_duplicates, summary.invalid) == (4, 2, 1, 1)
    assert summary.invalid_rows == [{"line": 2, "reason": "source_id '1' already names another prompt"}]
    assert sorted(Prompt.objects.values_list("source_id", flat=True)) == ["1", "2", "3"]


def test_rows_stored_by_another_import_meanwhile_count_as_exact_duplicates(tmp_path, monkeypatch):
    path = _jsonl(tmp_path, [{"prompt": "a lighthouse at dawn"}, {"prompt": "a corgi with a crown"}])
    prompts_import(path=path)
    # As if the lookup ran before another import committed the same prompts: ON CONFLICT skips them.
    monkeypatch.setattr(prompt_import_sql, "hashes_stored", lambda digests: set())
    again = prompts_import(path=path)
    assert (again.imported, again.exact_duplicates, again.invalid) == (0, 2, 0)
    assert Prompt.objects.count() == 2


def test_link_skips_prompts_linked_already_and_keeps_human_decisions():
    kept, linked, accepted, pending = (
        Prompt.objects.create(text=t, normalized_text=t, normalized_hash=t) for t in ("k", "l", "a", "p")
    )
    Prompt.objects.filter(pk=linked.pk).update(near_duplicate_of=pending)
    Prompt.objects.filter(pk=accepted.pk).update(status=PromptStatus.ACCEPTED)
    done = prompt_import_sql.near_duplicates_link([(linked.pk, kept.pk), (accepted.pk, kept.pk), (pending.pk, kept.pk)])
    assert sorted(done) == sorted([accepted.pk, pending.pk])
    rows = {p.pk: p for p in Prompt.objects.all()}
    assert rows[linked.pk].near_duplicate_of_id == pending.pk and rows[linked.pk].status == PromptStatus.PENDING
    assert (rows[accepted.pk].near_duplicate_of_id, rows[accepted.pk].status) == (kept.pk, PromptStatus.ACCEPTED)
    assert rows[accepted.pk].rejection_reasons == []
    assert (rows[pending.pk].near_duplicate_of_id, rows[pending.pk].status) == (kept.pk, PromptStatus.REJECTED)
    assert rows[pending.pk].rejection_reasons == ["duplicate"]
    assert prompt_import_sql.near_duplicates_link([(pending.pk, kept.pk)]) == []


@pytest.mark.parametrize("newline_at_end", [True, False])
def test_jsonl_total_is_counted_from_lines_and_bad_first_lines_do_not_refuse(tmp_path, newline_at_end):
    lines = ["{broken", "", {"prompt": "a fox in the snow"}, "[1]", {"prompt": "a bowl of ramen"}]
    seen = []
    summary = prompts_import(
        path=_jsonl(tmp_path, lines, newline_at_end=newline_at_end), progress=lambda d, t: seen.append((d, t))
    )
    assert (summary.rows_read, summary.imported, summary.invalid) == (5, 2, 3)
    assert [row["line"] for row in summary.invalid_rows] == [1, 2, 4]
    assert seen[-1] == (5, 5)


def test_signature_index_grows_past_the_expected_count():
    texts = [f"prompt number {i} with several more words here" for i in range(1200)]
    rows = list(enumerate(texts, start=1))
    small, exact = signature_index_build(rows, expected=10), signature_index_build(rows, expected=1200)
    assert np.array_equal(small.ids, np.arange(1, 1201)) and np.array_equal(small.ids, exact.ids)
    assert np.array_equal(small.signatures, exact.signatures) and np.array_equal(
        small.signatures[:3], minhash_signatures(texts[:3])
    )
    assert small.eligible.all()
