"""The gateway reads a Kubernetes list answer item by item, however the bytes arrive.

The API server's answer comes in pieces of any size (``test_kube_source``
reads real ones); here the same reader gets a list with the awkward parts a
piece boundary can cut through: strings holding brackets, braces, commas,
escaped quotes and non-ASCII text, numbers at the very end of a piece,
nested lists in items, and fields before and after ``items``.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from gateway.directory._kube_client import _ListReader

LIST: dict[str, Any] = {
    "kind": "TenantList",
    "apiVersion": "stowage.dev/v1alpha1",
    "metadata": {"resourceVersion": "12345", "continue": ""},
    "items": [
        {
            "metadata": {"name": f"t{i}", "generation": 10**i},
            "spec": {
                "note": 'a "quoted" ] } , [ { value — ünïcödé \\ end',
                "limits": [1, 2.5, -3e-7, True, False, None, [[], {}]],
                "count": 1234567890 + i,
            },
        }
        for i in range(6)
    ],
    "trailing": {"after": ["items", 7]},
}


def _read(text: str, cuts: list[int]) -> tuple[list[Any], _ListReader]:
    reader = _ListReader()
    items: list[Any] = []
    start = 0
    for end in [*cuts, len(text)]:
        items.extend(reader.feed(text[start:end]))
        start = end
    return items, reader


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_a_list_cut_into_pieces_of_any_size_reads_as_the_whole(size: int) -> None:
    for text in (json.dumps(LIST), json.dumps(LIST, indent=2, ensure_ascii=False)):
        items, reader = _read(text, list(range(size, len(text), size)))
        assert items == LIST["items"]
        assert reader.done
        assert reader.fields["metadata"] == LIST["metadata"]
        assert reader.fields["trailing"] == LIST["trailing"]


def test_a_list_cut_at_random_places_reads_as_the_whole() -> None:
    text = json.dumps(LIST)
    chooser = random.Random(20261123)
    for _ in range(200):
        cuts = sorted(chooser.sample(range(1, len(text)), 12))
        items, reader = _read(text, cuts)
        assert items == LIST["items"] and reader.done


def test_an_answer_that_ends_early_is_not_done_and_hands_over_only_whole_items() -> None:
    text = json.dumps(LIST)
    cut = text.index('"t3"')
    items, reader = _read(text[:cut], [])
    assert items == LIST["items"][:3]
    assert not reader.done


def test_an_answer_that_is_not_a_list_object_is_refused() -> None:
    with pytest.raises(ValueError, match="expected"):
        list(_ListReader().feed("[1, 2, 3]"))
