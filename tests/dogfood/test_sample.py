"""The objects the check writes to a declared collection are ones its schema accepts."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from stowage.dogfood._sample import NoSample, sample_object


def test_a_sample_has_the_required_fields_within_their_bounds_and_is_accepted() -> None:
    schema = {
        "type": "object",
        "required": ["title", "count", "tags", "kind", "meta"],
        "properties": {
            "title": {"type": "string", "minLength": 10, "maxLength": 12},
            "count": {"type": "integer", "exclusiveMinimum": 4},
            "tags": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "kind": {"enum": ["book", "film"]},
            "meta": {"type": "object", "required": ["ok"], "properties": {"ok": {"const": True}}},
            "optional": {"type": "string"},
        },
        "additionalProperties": False,
    }

    sample = sample_object(schema)

    assert not list(Draft202012Validator(schema).iter_errors(sample))
    assert set(sample) == {"title", "count", "tags", "kind", "meta"}


def test_a_schema_the_smallest_guess_cannot_satisfy_is_reported_not_guessed() -> None:
    schema = {
        "type": "object",
        "required": ["code"],
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
    }

    with pytest.raises(NoSample, match="refused at code"):
        sample_object(schema)
