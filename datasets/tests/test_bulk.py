import pytest

from datasets.bulk import rows_insert
from datasets.models import BenchmarkKind, EvaluationItem, EvaluationSet


@pytest.mark.django_db
def test_rows_are_inserted_a_batch_at_a_time_as_the_stream_yields_them():
    evaluation_set = EvaluationSet.objects.create(name="bulk", kind=BenchmarkKind.PICKAPIC)
    stored_before: list[int] = []

    def rows():
        for number in range(5):
            stored_before.append(EvaluationItem.objects.count())
            yield EvaluationItem(evaluation_set=evaluation_set, external_id=str(number), prompt="p",
                                 images=["a.png", "b.png"], ranking=[1, 2])  # fmt: skip

    written: list[int] = []
    assert rows_insert(EvaluationItem, rows(), batch_size=2, written=written.append) == 5
    assert written == [2, 4, 5]
    assert stored_before == [0, 0, 2, 2, 4]  # one batch in memory: the next is built after the last is stored
    assert sorted(EvaluationItem.objects.values_list("external_id", flat=True)) == ["0", "1", "2", "3", "4"]
    assert rows_insert(EvaluationItem, iter(()), batch_size=2) == 0
