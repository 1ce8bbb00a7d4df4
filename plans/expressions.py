"""Billable metric expressions (spec §4.1): Lago's small event language, evaluated safely.

Lago's grammar (getlago/lago-expression): decimals, 'single-quoted strings', `event.code`,
`event.timestamp`, `event.properties.<name>`, unary minus, `+ - * /`, and the functions
`ceil`, `floor`, `round` (each with an optional number of decimals), `concat`, `min`/`max`
(also spelled `least`/`greatest`), in lower, UPPER or Capitalized case.

The text is parsed by Python's `ast` and every node is checked against that grammar before
`simpleeval` evaluates it; nothing else (names, subscripts, `**`, comparisons, keyword
arguments, dunder attributes) gets through, and `eval` is never used. Numbers are `Decimal`,
built from the literal's source text, never from a float.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, DecimalException
from decimal import localcontext as decimal_context

from simpleeval import SimpleEval

from billing.money import parse_decimal

MAX_EXPRESSION_LENGTH = 2000
MAX_DEPTH = 50
_PRECISION = 60  # significant digits of intermediate results (Lago: arbitrary precision)
_PROPERTY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_DECIMAL_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")


class ExpressionError(ValueError):
    """An expression that cannot be parsed, or an event it cannot be evaluated against."""


class InvalidExpression(ExpressionError):
    """The text is not in Lago's expression grammar (`invalid_expression`)."""


class EvaluationError(ExpressionError):
    """A valid expression failed on this event (missing property, text in arithmetic...)."""


Value = Decimal | str


def _rounding(mode: str) -> Callable[..., Decimal]:
    def apply(value: Value, digits: Value = Decimal(0)) -> Decimal:
        number, places = _number(value), _number(digits)
        if places != places.to_integral_value():
            raise EvaluationError("the number of decimals must be an integer")
        return number.quantize(Decimal(1).scaleb(-int(places)), rounding=mode)

    return apply


def _concat(*values: Value) -> str:
    return "".join(value if isinstance(value, str) else _plain(value) for value in values)


def _least(*values: Value) -> Decimal:
    return min(_number(value) for value in values)


def _greatest(*values: Value) -> Decimal:
    return max(_number(value) for value in values)


_FUNCTIONS: dict[str, tuple[Callable[..., Value], int, int | None]] = {
    # name: (implementation, min args, max args)
    "ceil": (_rounding(ROUND_CEILING), 1, 2),
    "floor": (_rounding(ROUND_FLOOR), 1, 2),
    "round": (_rounding(ROUND_HALF_UP), 1, 2),  # half away from zero, like Lago
    "concat": (_concat, 1, None),
    "min": (_least, 1, None),
    "max": (_greatest, 1, None),
    "least": (_least, 1, None),
    "greatest": (_greatest, 1, None),
}
# Lago accepts `round`, `ROUND` and `Round`, not `rOuNd`.
_SPELLINGS = {
    spelling: name for name in _FUNCTIONS for spelling in (name, name.upper(), name.capitalize())
}


def _number(value: Value) -> Decimal:
    if isinstance(value, Decimal):
        return value
    raise EvaluationError("expected a number")


def _plain(value: Decimal) -> str:
    """A decimal written out without exponent (`1E+2` -> `100`)."""
    return format(value, "f")


class _Checker(ast.NodeVisitor):
    """Refuses every node outside Lago's grammar; the AST is trusted only after this pass."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.depth = 0

    def generic_visit(self, node: ast.AST) -> None:
        raise InvalidExpression(f"{type(node).__name__} is not allowed")

    def visit(self, node: ast.AST) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InvalidExpression("expression too deeply nested")
        try:
            super().visit(node)
        finally:
            self.depth -= 1

    def visit_Expression(self, node: ast.Expression) -> None:
        self.visit(node.body)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if not isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
            raise InvalidExpression(f"operator {type(node.op).__name__} is not allowed")
        self.visit(node.left)
        self.visit(node.right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if not isinstance(node.op, ast.USub):
            raise InvalidExpression(f"operator {type(node.op).__name__} is not allowed")
        self.visit(node.operand)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, bool) or not isinstance(node.value, int | float | str):
            raise InvalidExpression("only decimals and strings are allowed")
        if isinstance(node.value, int | float):
            text = ast.get_source_segment(self.source, node) or ""
            if not re.fullmatch(r"\d+(\.\d+)?", text):  # Lago: digits, optional fraction
                raise InvalidExpression(f"invalid number {text!r}")

    def visit_Call(self, node: ast.Call) -> None:
        if not isinstance(node.func, ast.Name) or node.func.id not in _SPELLINGS:
            raise InvalidExpression("unknown function")
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise InvalidExpression("functions take positional arguments only")
        _, least, most = _FUNCTIONS[_SPELLINGS[node.func.id]]
        if len(node.args) < least or (most is not None and len(node.args) > most):
            raise InvalidExpression(f"wrong number of arguments to {node.func.id}")
        for arg in node.args:
            self.visit(arg)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _event_attribute(node) is None:
            raise InvalidExpression("only event.code, event.timestamp, event.properties.<name>")


def _event_attribute(node: ast.Attribute) -> tuple[str, str | None] | None:
    """`event.code` -> ("code", None); `event.properties.x` -> ("properties", "x"); else None."""
    match node:
        case ast.Attribute(value=ast.Name(id="event"), attr="code" | "timestamp" as attr):
            return attr, None
        case ast.Attribute(
            value=ast.Attribute(value=ast.Name(id="event"), attr="properties"), attr=name
        ) if _PROPERTY_NAME.match(name):
            return "properties", name
    return None


def _parse(expression: str) -> ast.Expression:
    source = expression.strip() if isinstance(expression, str) else ""
    if not source:
        raise InvalidExpression("empty expression")
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise InvalidExpression("expression too long")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise InvalidExpression(str(exc)) from exc
    _Checker(source).visit(tree)
    return tree


class _Evaluator(SimpleEval):
    """simpleeval restricted to the checked grammar, with Decimal numbers."""

    def __init__(self, source: str, event: _Event) -> None:
        super().__init__(
            operators={
                ast.Add: lambda a, b: _number(a) + _number(b),
                ast.Sub: lambda a, b: _number(a) - _number(b),
                ast.Mult: lambda a, b: _number(a) * _number(b),
                ast.Div: lambda a, b: _number(a) / _number(b),
                ast.USub: lambda a: -_number(a),
            },
            functions={spelling: _FUNCTIONS[name][0] for spelling, name in _SPELLINGS.items()},
            names={},
        )
        self.source = source
        self.event = event
        self.nodes = {
            ast.BinOp: self._eval_binop,
            ast.UnaryOp: self._eval_unaryop,
            ast.Call: self._eval_call,
            ast.Constant: self._eval_constant,
            ast.Attribute: self._eval_attribute,
        }

    def _eval_constant(self, node: ast.Constant) -> Value:
        if isinstance(node.value, str):
            return node.value
        return Decimal(ast.get_source_segment(self.source, node))

    def _eval_attribute(self, node: ast.Attribute) -> Value:
        attribute = _event_attribute(node)
        if attribute is None:  # unreachable after _Checker; kept as a second lock
            raise InvalidExpression("attribute not allowed")
        kind, name = attribute
        if kind == "code":
            return self.event.code
        if kind == "timestamp":
            if self.event.timestamp is None:
                raise EvaluationError("event.timestamp is missing")
            return self.event.timestamp
        if name not in self.event.properties:
            raise EvaluationError(f"event.properties.{name} is missing")
        return self.event.properties[name]


class _Event:
    """The three things an expression can read, normalised like Lago (properties as text,
    read back as numbers when they look like numbers)."""

    def __init__(self, event: Mapping) -> None:
        self.code = str(event.get("code") or "")
        self.timestamp = _timestamp(event.get("timestamp"))
        properties = event.get("properties") or {}
        if not isinstance(properties, Mapping):
            raise EvaluationError("event.properties must be an object")
        self.properties = {str(k): _property(v) for k, v in properties.items()}


def _property(value: object) -> Value:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal):
        return parse_decimal(value)
    text = str(value)
    if _DECIMAL_TEXT.match(text):
        return Decimal(text)
    return text


def _timestamp(value: object) -> Decimal | None:
    """Unix seconds, as Lago reads `event.timestamp` (an integer)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return Decimal(int(value.timestamp()))
    if isinstance(value, bool):
        raise EvaluationError("invalid timestamp")
    try:
        number = parse_decimal(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise EvaluationError("invalid timestamp") from exc
        return Decimal(int(parsed.timestamp()))
    return number.to_integral_value(rounding=ROUND_FLOOR)


def validate_expression(expression: str) -> bool:
    """True when `expression` is in Lago's grammar (spec §4.1: else `invalid_expression`)."""
    try:
        _parse(expression)
    except InvalidExpression:
        return False
    return True


def evaluate_expression(expression: str, event: Mapping) -> Decimal | str:
    """The value of `expression` for `event` ({code, timestamp, properties}).

    Raises InvalidExpression for a text outside the grammar and EvaluationError when the
    event cannot satisfy it (missing property, text where a number is needed, division by 0).
    """
    tree = _parse(expression)
    source = expression.strip()
    evaluator = _Evaluator(source, _Event(event))
    try:
        with decimal_context() as context:
            context.prec = _PRECISION
            result = evaluator.eval(source, previously_parsed=tree.body)
    except ExpressionError:
        raise
    except (DecimalException, ArithmeticError, RecursionError) as exc:
        raise EvaluationError(str(exc) or type(exc).__name__) from exc
    if isinstance(result, Decimal) and not result.is_finite():
        raise EvaluationError("not a finite number")
    return result


def format_expression_value(value: Decimal | str) -> str:
    """The wire form of a result, as Lago renders its BigDecimal: `13.0`, `12.35`, text as is."""
    if isinstance(value, str):
        return value
    text = _plain(value.normalize()) if value else "0"
    return text if "." in text else f"{text}.0"
