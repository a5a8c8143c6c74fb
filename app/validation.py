"""Why a request's value was refused, in the language of the request (pydantic's 422 errors).

pydantic writes its reasons in English ("Field required", "Input should be a valid UUID, …");
``reason()`` words the common error types again from their ``type`` and ``ctx``, through the
catalogue, so that an organiser reading French gets French. The field names stay as sent. A type
not listed here keeps pydantic's own text; a ``value_error`` raised by our validators is already
worded with ``_()`` and is passed on without pydantic's "Value error, " prefix.
"""

from __future__ import annotations

from typing import Any

from app.i18n import N_, _

# error type -> message; {names} come from the error's ctx (pydantic's own keys).
_REASONS: dict[str, str] = {
    "missing": N_("this field is required"),
    "extra_forbidden": N_("unknown field: it is not accepted here (check its spelling)"),
    "string_type": N_("should be a text (a string)"),
    "string_too_short": N_("should have at least {min_length} character(s)"),
    "string_too_long": N_("should have at most {max_length} character(s)"),
    "string_pattern_mismatch": N_("does not have the expected form (pattern {pattern})"),
    "string_unicode": N_("should be valid Unicode text"),
    "int_type": N_("should be a whole number"),
    "int_parsing": N_("should be a whole number"),
    "int_from_float": N_("should be a whole number, not a number with decimals"),
    "int_parsing_size": N_("is too large a number"),
    "float_type": N_("should be a number"),
    "float_parsing": N_("should be a number"),
    "finite_number": N_("should be a finite number"),
    "decimal_type": N_("should be a decimal number"),
    "decimal_parsing": N_("should be a decimal number"),
    "bool_type": N_("should be true or false"),
    "bool_parsing": N_("should be true or false"),
    "greater_than": N_("should be greater than {gt}"),
    "greater_than_equal": N_("should be greater than or equal to {ge}"),
    "less_than": N_("should be less than {lt}"),
    "less_than_equal": N_("should be less than or equal to {le}"),
    "multiple_of": N_("should be a multiple of {multiple_of}"),
    "literal_error": N_("should be {expected}"),
    "enum": N_("should be {expected}"),
    "uuid_type": N_("should be a UUID (e.g. 123e4567-e89b-12d3-a456-426614174000)"),
    "uuid_parsing": N_("should be a UUID (e.g. 123e4567-e89b-12d3-a456-426614174000)"),
    "uuid_version": N_("should be a UUID of version {expected_version}"),
    "datetime_type": N_("should be a date and time (ISO 8601, e.g. 2026-03-15T18:30:00+01:00)"),
    "datetime_parsing": N_("should be a date and time (ISO 8601, e.g. 2026-03-15T18:30:00+01:00)"),
    "datetime_from_date_parsing": N_(
        "should be a date and time (ISO 8601, e.g. 2026-03-15T18:30:00+01:00)"
    ),
    "datetime_object_invalid": N_("is not a possible date and time"),
    "timezone_aware": N_("should give its time zone (e.g. 2026-03-15T18:30:00+01:00)"),
    "timezone_naive": N_("should not give a time zone"),
    "datetime_past": N_("should be in the past"),
    "datetime_future": N_("should be in the future"),
    "date_type": N_("should be a date (ISO 8601, e.g. 2026-03-15)"),
    "date_parsing": N_("should be a date (ISO 8601, e.g. 2026-03-15)"),
    "date_from_datetime_parsing": N_("should be a date (ISO 8601, e.g. 2026-03-15)"),
    "date_from_datetime_inexact": N_("should be a date without a time of day"),
    "date_past": N_("should be in the past"),
    "date_future": N_("should be in the future"),
    "time_type": N_("should be a time of day (e.g. 18:30)"),
    "time_parsing": N_("should be a time of day (e.g. 18:30)"),
    "time_delta_type": N_("should be a duration"),
    "time_delta_parsing": N_("should be a duration"),
    "list_type": N_("should be a list"),
    "tuple_type": N_("should be a list"),
    "set_type": N_("should be a list without repeats"),
    "dict_type": N_("should be an object"),
    "model_type": N_("should be an object"),
    "model_attributes_type": N_("should be an object"),
    "dataclass_type": N_("should be an object"),
    "too_short": N_("should have at least {min_length} item(s), not {actual_length}"),
    "too_long": N_("should have at most {max_length} item(s), not {actual_length}"),
    "json_invalid": N_("is not valid JSON ({error})"),
    "json_type": N_("should be JSON"),
    "url_type": N_("should be an address (URL)"),
    "url_parsing": N_("should be an address (URL) such as https://example.org"),
    "url_scheme": N_("should be an address starting with {expected_schemes}"),
    "url_too_long": N_("should be an address of at most {max_length} characters"),
    "none_required": N_("should be left empty (null)"),
    "bytes_type": N_("should be binary data"),
    "bytes_too_short": N_("should have at least {min_length} byte(s)"),
    "bytes_too_long": N_("should have at most {max_length} byte(s)"),
    "union_tag_invalid": N_("{discriminator} should be {expected_tags}, not {tag}"),
    "union_tag_not_found": N_("should name its kind with {discriminator}"),
    "frozen_field": N_("cannot be changed"),
    "frozen_instance": N_("cannot be changed"),
}


def _value(key: str, value: Any) -> str:
    text = str(value)
    if key in ("expected", "expected_tags", "expected_schemes"):
        # pydantic joins the choices with an English "or": "'a', 'b' or 'c'"
        text = text.replace(" or ", _(" or "))
    return text


def reason(err: dict[str, Any]) -> str:
    """The reason of one pydantic error, in the current language."""
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])  # our own validators' text, already translated
    template = _REASONS.get(kind)
    if template is None:
        return str(err.get("msg", kind or "invalid"))
    try:
        return _(template).format(**{k: _value(k, v) for k, v in ctx.items()})
    except (KeyError, IndexError, ValueError):
        return str(err.get("msg", kind))
