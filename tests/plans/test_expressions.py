"""Billable metric expressions (spec §4.1): Lago's grammar, Decimal results, nothing else."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from plans.expressions import (
    EvaluationError,
    InvalidExpression,
    evaluate_expression,
    format_expression_value,
    validate_expression,
)

EVENT = {
    "code": "storage",
    "timestamp": 1651240791,
    "properties": {"value": "2.5", "units": 3, "fraction": 0.1, "region": "eu", "flag": True},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        pytest.param("round(event.properties.value * 2)", Decimal(5), id="round-product"),
        pytest.param("round(12.5)", Decimal(13), id="round-half-away-from-zero"),
        pytest.param("round(-12.5)", Decimal(-13), id="round-negative-half-away-from-zero"),
        pytest.param("round(12.345, 2)", Decimal("12.35"), id="round-to-decimals"),
        pytest.param("ceil(event.properties.value)", Decimal(3), id="ceil"),
        pytest.param("ceil(12.351, 1)", Decimal("12.4"), id="ceil-to-decimals"),
        pytest.param("ceil(123, -1)", Decimal(130), id="ceil-to-tens"),
        pytest.param("floor(12.351, 1)", Decimal("12.3"), id="floor-to-decimals"),
        pytest.param("event.properties.fraction + 0.2", Decimal("0.3"), id="no-binary-float"),
        pytest.param("(event.properties.units - 1) / 4", Decimal("0.5"), id="parentheses"),
        pytest.param("-event.properties.units", Decimal(-3), id="unary-minus"),
        pytest.param("event.timestamp", Decimal(1651240791), id="timestamp-seconds"),
        pytest.param("max(1, event.properties.units, 2)", Decimal(3), id="max"),
        pytest.param("min(1, event.properties.units)", Decimal(1), id="min"),
        pytest.param("ROUND(1.4)", Decimal(1), id="upper-case-function"),
        pytest.param("Ceil(1.4)", Decimal(2), id="capitalized-function"),
        pytest.param("concat(event.code, '-', event.properties.region)", "storage-eu", id="concat"),
        pytest.param("concat('v', event.properties.value)", "v2.5", id="concat-number"),
        pytest.param("event.properties.flag", "true", id="boolean-property-is-text"),
        pytest.param("event.code", "storage", id="code"),
    ],
)
def test_evaluates_lago_expressions(expression, expected):
    result = evaluate_expression(expression, EVENT)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("round(event.properties.value)", id="function"),
        pytest.param("event.properties.a_b1 * 2 + 1", id="arithmetic"),
        pytest.param("concat('a', 'b', 'c')", id="concat"),
        pytest.param("  event.timestamp  ", id="surrounding-spaces"),
    ],
)
def test_validate_accepts_lago_grammar(expression):
    assert validate_expression(expression) is True


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("", id="empty"),
        pytest.param("round(", id="syntax-error"),
        pytest.param("1 +", id="dangling-operator"),
        pytest.param("foo(1)", id="unknown-function"),
        pytest.param("rOuNd(1)", id="mixed-case-function"),
        pytest.param("round(1, 2, 3)", id="too-many-arguments"),
        pytest.param("round(1, digits=2)", id="keyword-argument"),
        pytest.param("event.properties", id="properties-object"),
        pytest.param("event.other", id="unknown-event-attribute"),
        pytest.param("value * 2", id="bare-name"),
        pytest.param("2 ** 10", id="power"),
        pytest.param("7 % 2", id="modulo"),
        pytest.param("1 < 2", id="comparison"),
        pytest.param("1 if 1 else 2", id="conditional"),
        pytest.param("[1, 2]", id="list"),
        pytest.param("1e3", id="exponent-literal"),
        pytest.param("0x10", id="hexadecimal-literal"),
        pytest.param("True", id="boolean-literal"),
        pytest.param("1; 2", id="two-statements"),
    ],
)
def test_validate_refuses_what_lago_refuses(expression):
    assert validate_expression(expression) is False


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("__import__('os')", id="import"),
        pytest.param("__import__('os').system('true')", id="import-and-call"),
        pytest.param("event.__class__", id="dunder-on-event"),
        pytest.param("event.properties.__class__", id="dunder-on-properties"),
        pytest.param("event.properties._private", id="underscore-property"),
        pytest.param("(1).__class__.__bases__", id="dunder-chain"),
        pytest.param("'a'.upper()", id="string-method"),
        pytest.param("open('/etc/passwd')", id="builtin-open"),
        pytest.param("eval('1')", id="builtin-eval"),
        pytest.param("lambda: 1", id="lambda"),
        pytest.param("[x for x in 'ab']", id="comprehension"),
        pytest.param("round.__globals__", id="function-globals"),
        pytest.param("f'{1}'", id="f-string"),
    ],
)
def test_python_internals_are_out_of_reach(expression):
    assert validate_expression(expression) is False
    with pytest.raises(InvalidExpression):
        evaluate_expression(expression, EVENT)


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("event.properties.missing", id="missing-property"),
        pytest.param("event.properties.region * 2", id="text-in-arithmetic"),
        pytest.param("round(event.code)", id="text-rounded"),
        pytest.param("1 / 0", id="division-by-zero"),
        pytest.param("round(1.5, 0.5)", id="fractional-decimals"),
    ],
)
def test_evaluation_failures_are_reported(expression):
    assert validate_expression(expression) is True
    with pytest.raises(EvaluationError):
        evaluate_expression(expression, EVENT)


def test_timestamp_accepts_an_aware_datetime():
    event = {"timestamp": datetime(2022, 4, 29, 13, 59, 51, tzinfo=UTC)}
    assert evaluate_expression("event.timestamp", event) == Decimal(1651240791)


def test_timestamp_accepts_an_iso_string():
    assert evaluate_expression("event.timestamp", {"timestamp": "2022-04-29T13:59:51Z"}) == (
        Decimal(1651240791)
    )


def test_missing_timestamp_fails_only_when_read():
    assert evaluate_expression("1 + 1", {}) == Decimal(2)
    with pytest.raises(EvaluationError):
        evaluate_expression("event.timestamp", {})


def test_overlong_expression_is_invalid():
    assert validate_expression("1 + " * 1000 + "1") is False


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        pytest.param(Decimal(13), "13.0", id="integer"),
        pytest.param(Decimal("12.350"), "12.35", id="trailing-zeros"),
        pytest.param(Decimal("1.3E+2"), "130.0", id="exponent"),
        pytest.param(Decimal(0), "0.0", id="zero"),
        pytest.param("eu-1", "eu-1", id="text"),
    ],
)
def test_results_are_written_as_lago_writes_big_decimals(value, wire):
    assert format_expression_value(value) == wire
