"""The whole API fuzzed from its own OpenAPI schema (schemathesis): valid and invalid requests, as an
annotator and as staff. Any 5xx fails the test; the outcome counts are printed for the README."""

import json
from collections import Counter
from urllib.parse import urlencode

import pytest
import schemathesis
from django.db import transaction
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from schemathesis.core import NotSet
from schemathesis.generation import GenerationMode

from annotation import roles
from annotation.labeling.tests.labeling_factories import make_pairs
from annotation.tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
EXAMPLES_PER_OPERATION = 25


def _operations():
    schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    return [result.ok() for result in schema.get_all_operations()]


def _send(client: Client, case) -> int:
    path = case.formatted_path
    if case.query:
        path += "?" + urlencode(case.query, doseq=True)
    body = _encoded(case.body)
    # A savepoint per request: what one request changed or broke never leaks into the next.
    with transaction.atomic():
        response = client.generic(case.method, path, body, content_type=case.media_type or "application/json")
        transaction.set_rollback(True)
    return response.status_code


def _encoded(body) -> bytes | str:
    if isinstance(body, NotSet):
        return ""
    if isinstance(body, bytes):
        return body
    try:
        return json.dumps(body)
    except (TypeError, ValueError):  # negative cases may hold what JSON cannot say: send its text
        return str(body)


@pytest.mark.parametrize("role", [roles.ANNOTATOR, roles.ADMIN])
def test_no_request_the_fuzzer_makes_gets_a_5xx(role, capsys):
    make_pairs(3)
    client = Client(raise_request_exception=False)
    client.force_login(make_user(role))
    outcomes, failures = Counter(), []
    for operation in _operations():
        for mode in GenerationMode:

            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(case=operation.as_strategy(generation_mode=mode))
            def probe(case):
                code = _send(client, case)
                outcomes[f"{code // 100}xx"] += 1
                if code >= 500:
                    failures.append(f"{code} {case.method} {case.formatted_path} {case.query} {case.body!r}"[:400])

            probe()
    with capsys.disabled():
        print(f"\nAPI fuzz as {role}: {sum(outcomes.values())} requests, {dict(sorted(outcomes.items()))}")
    assert failures == []
