"""Translate SCIM filters (RFC 7644 §3.4.2.2) into SQL on indexed columns.

scim2-models parses the filter and binds each attribute path to the resource
model; this module walks that tree and emits a SQLAlchemy condition. Only the
attributes listed in ``USER_ATTRIBUTES`` and ``GROUP_ATTRIBUTES`` can be
filtered on; any other attribute is rejected with ``invalidFilter`` rather than
scanned or ignored.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scim2_models import InvalidFilterException, SCIMException, ScimFilter
from scim2_models.path import (
    AttributeBinding,
    AttrPath,
    CompareOperator,
    Comparison,
    FilterVisitor,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from scim2_models.path.resolution import coerce_value
from sqlalchemy import ColumnElement, and_, exists, not_, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute

from scim_reconciler.db.models import Group, GroupMember, User, UserEmail
from scim_reconciler.scim.limits import is_storable
from scim_reconciler.scim.schemas import GroupResource, UserResource
from scim_reconciler.text import comparison_key

MAX_FILTER_LENGTH = 4096


class Kind(enum.Enum):
    folded = "folded"  # case-insensitive string, column holds comparison_key()
    exact = "exact"  # case-exact string
    boolean = "boolean"
    datetime = "datetime"


@dataclass(frozen=True)
class Column:
    column: InstrumentedAttribute[Any]
    kind: Kind


@dataclass(frozen=True)
class MultiValued:
    """A multi-valued attribute kept in a child table, reached through EXISTS."""

    owner_key: InstrumentedAttribute[Any]
    parent_key: InstrumentedAttribute[Any]
    sub_attributes: dict[str, Column]
    default_sub_attribute: str = "value"


USER_ATTRIBUTES: dict[tuple[str, str | None], Column] = {
    ("id", None): Column(User.id, Kind.exact),
    ("user_name", None): Column(User.user_name_key, Kind.folded),
    ("external_id", None): Column(User.external_id, Kind.exact),
    ("display_name", None): Column(User.display_name_key, Kind.folded),
    ("active", None): Column(User.active, Kind.boolean),
    ("meta", "last_modified"): Column(User.last_modified, Kind.datetime),
    ("meta", "created"): Column(User.created_at, Kind.datetime),
}
USER_MULTI_VALUED = {
    "emails": MultiValued(
        owner_key=UserEmail.user_id,
        parent_key=User.id,
        sub_attributes={
            "value": Column(UserEmail.value_key, Kind.folded),
            "type": Column(UserEmail.type, Kind.folded),
            "primary": Column(UserEmail.primary, Kind.boolean),
        },
    )
}
GROUP_ATTRIBUTES: dict[tuple[str, str | None], Column] = {
    ("id", None): Column(Group.id, Kind.exact),
    ("display_name", None): Column(Group.display_name_key, Kind.folded),
    ("external_id", None): Column(Group.external_id, Kind.exact),
    ("meta", "last_modified"): Column(Group.last_modified, Kind.datetime),
    ("meta", "created"): Column(Group.created_at, Kind.datetime),
}
GROUP_MULTI_VALUED = {
    "members": MultiValued(
        owner_key=GroupMember.group_id,
        parent_key=Group.id,
        sub_attributes={"value": Column(GroupMember.user_id, Kind.exact)},
    )
}

USER_FILTERABLE = (
    "id, userName, externalId, displayName, active, emails.value, emails.type, "
    "emails.primary, meta.created, meta.lastModified"
)
GROUP_FILTERABLE = (
    "id, displayName, externalId, members.value, meta.created, meta.lastModified"
)


def _exists(multi: MultiValued, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    query = select(1).where(multi.owner_key == multi.parent_key, condition)
    return exists(query.correlate(multi.parent_key.class_))


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _SqlVisitor(FilterVisitor[ColumnElement[bool]]):
    def __init__(
        self,
        scim_filter: ScimFilter[Any],
        attributes: dict[tuple[str, str | None], Column],
        multi_valued: dict[str, MultiValued],
        filterable: str,
    ) -> None:
        self.scim_filter = scim_filter
        self.attributes = attributes
        self.multi_valued = multi_valued
        self.filterable = filterable

    def _unsupported(self, path: AttrPath | str) -> InvalidFilterException:
        return InvalidFilterException(
            detail=f"filtering on {str(path)!r} is not supported; filterable "
            f"attributes are {self.filterable}"
        )

    def _bind(self, path: AttrPath) -> AttributeBinding:
        binding = self.scim_filter.resolve_comparison(path, strict=True)
        assert binding is not None  # the filter is always bound to a model
        return binding

    def visit_logical_expr(self, node: LogicalExpr) -> ColumnElement[bool]:
        terms = [self.visit(term) for term in node.terms]
        return and_(*terms) if node.op is LogicalOperator.and_ else or_(*terms)

    def visit_not(self, node: Not) -> ColumnElement[bool]:
        return not_(self.visit(node.expr))

    def visit_present(self, node: Present) -> ColumnElement[bool]:
        return self._condition(node.attr_path, None, None)

    def visit_comparison(self, node: Comparison) -> ColumnElement[bool]:
        return self._condition(node.attr_path, node.op, node.value)

    def visit_value_path(self, node: ValuePath) -> ColumnElement[bool]:
        binding = self.scim_filter.resolve(node.attr_path, strict=True)
        assert binding is not None
        multi = self.multi_valued.get(binding.field_name)
        if multi is None:
            raise self._unsupported(node.attr_path)
        inner = _SubVisitor(self, multi, node.attr_path).visit(node.val_filter)
        return _exists(multi, inner)

    def _condition(
        self, path: AttrPath, op: CompareOperator | None, value: Any
    ) -> ColumnElement[bool]:
        binding = self._bind(path)
        multi = self.multi_valued.get(binding.field_name)
        if multi is not None:
            sub = binding.sub_field_name or multi.default_sub_attribute
            column = multi.sub_attributes.get(sub)
            if column is None:
                raise self._unsupported(path)
            inner = _compare(column, op, self._value(binding, op, value), path)
            return _exists(multi, inner)
        column = self.attributes.get((binding.field_name, binding.sub_field_name))
        if column is None or not binding.urn.startswith(
            "urn:ietf:params:scim:schemas:core"
        ):
            raise self._unsupported(path)
        return _compare(column, op, self._value(binding, op, value), path)

    @staticmethod
    def _value(
        binding: AttributeBinding, op: CompareOperator | None, value: Any
    ) -> Any:
        if op is None or value is None:
            return None
        if binding.target_type is bool and not isinstance(value, bool):
            raise InvalidFilterException(
                detail=f"{binding.urn} takes true or false, got {value!r}"
            )
        coerced = coerce_value(binding, value, op)
        if isinstance(coerced, datetime) and coerced.tzinfo is None:
            # RFC 3339 requires an offset; a value without one is read as UTC.
            coerced = coerced.replace(tzinfo=UTC)
        return coerced


class _SubVisitor(FilterVisitor[ColumnElement[bool]]):
    """Conditions inside ``attr[...]``, on the child table of ``attr``."""

    def __init__(self, parent: _SqlVisitor, multi: MultiValued, head: AttrPath) -> None:
        self.parent = parent
        self.multi = multi
        self.head = head

    def visit_logical_expr(self, node: LogicalExpr) -> ColumnElement[bool]:
        terms = [self.visit(term) for term in node.terms]
        return and_(*terms) if node.op is LogicalOperator.and_ else or_(*terms)

    def visit_not(self, node: Not) -> ColumnElement[bool]:
        return not_(self.visit(node.expr))

    def visit_present(self, node: Present) -> ColumnElement[bool]:
        return self._condition(node.attr_path, None, None)

    def visit_comparison(self, node: Comparison) -> ColumnElement[bool]:
        return self._condition(node.attr_path, node.op, node.value)

    def visit_value_path(self, node: ValuePath) -> ColumnElement[bool]:
        raise InvalidFilterException(
            detail=f"nested value filters are not allowed: {node}"
        )

    def _condition(
        self, path: AttrPath, op: CompareOperator | None, value: Any
    ) -> ColumnElement[bool]:
        full = AttrPath(attr=self.head.attr, sub_attr=path.attr, uri=self.head.uri)
        binding = self.parent._bind(full)
        column = self.multi.sub_attributes.get(binding.sub_field_name or "")
        if column is None:
            raise self.parent._unsupported(full)
        return _compare(column, op, _SqlVisitor._value(binding, op, value), full)


def _compare(
    spec: Column, op: CompareOperator | None, value: Any, path: AttrPath
) -> ColumnElement[bool]:
    column = spec.column
    if op is None:  # presence
        if spec.kind in (Kind.folded, Kind.exact):
            return and_(column.is_not(None), column != "")
        return column.is_not(None)

    if value is None:
        # "attr eq null" is how some clients ask for an unassigned attribute.
        if op is CompareOperator.eq:
            return column.is_(None)
        if op is CompareOperator.ne:
            return column.is_not(None)
        raise InvalidFilterException(
            detail=f"{path} {op.value} null is not a valid comparison"
        )

    if spec.kind is Kind.boolean:
        if not isinstance(value, bool):
            raise InvalidFilterException(
                detail=f"{path} takes true or false, got {value!r}"
            )
        if op not in (CompareOperator.eq, CompareOperator.ne):
            raise InvalidFilterException(
                detail=f"operator {op.value!r} cannot compare the boolean {path}"
            )
    if spec.kind is Kind.datetime:
        if not isinstance(value, datetime):
            raise InvalidFilterException(
                detail=f"{path} takes a dateTime, got {value!r}"
            )
        if op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
            raise InvalidFilterException(
                detail=f"operator {op.value!r} cannot compare the dateTime {path}"
            )
    if spec.kind in (Kind.folded, Kind.exact):
        if not isinstance(value, str):
            raise InvalidFilterException(detail=f"{path} takes a string, got {value!r}")
        if not is_storable(value):
            raise InvalidFilterException(
                detail=f"the value compared with {path} contains a NUL character "
                "(U+0000); remove it"
            )
        if spec.kind is Kind.folded:
            value = comparison_key(value)

    if op is CompareOperator.ne:
        return or_(column.is_(None), column != value)
    present = column.is_not(None)
    if op is CompareOperator.eq:
        condition = column == value
    elif op is CompareOperator.co:
        condition = column.like(f"%{_escape_like(value)}%", escape="\\")
    elif op is CompareOperator.sw:
        condition = column.like(f"{_escape_like(value)}%", escape="\\")
    elif op is CompareOperator.ew:
        condition = column.like(f"%{_escape_like(value)}", escape="\\")
    elif op is CompareOperator.gt:
        condition = column > value
    elif op is CompareOperator.ge:
        condition = column >= value
    elif op is CompareOperator.lt:
        condition = column < value
    elif op is CompareOperator.le:
        condition = column <= value
    else:  # pragma: no cover - every RFC 7644 operator is handled above
        raise InvalidFilterException(detail=f"operator {op.value!r} is not supported")
    return and_(present, condition)


def _parse(text: str, model: type[Any]) -> ScimFilter[Any]:
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilterException(
            detail=f"the filter is {len(text)} characters long; the limit is "
            f"{MAX_FILTER_LENGTH}"
        )
    try:
        return ScimFilter[model](text)  # type: ignore[valid-type]
    except InvalidFilterException as exc:
        # scim2-models reports only the column, so name the filter and the usual
        # cause (RFC 7644 §3.4.2.2 compValue: false, null, true, number, string).
        raise InvalidFilterException(
            detail=f"invalid filter {text!r}: {exc.detail}; values other than "
            "true, false, null and numbers must be in double quotes"
        ) from None
    except SCIMException:
        raise
    except (ValueError, TypeError) as exc:
        raise InvalidFilterException(detail=f"invalid filter {text!r}: {exc}") from None


def _translate(visitor: _SqlVisitor, text: str) -> ColumnElement[bool]:
    try:
        return visitor.visit(visitor.scim_filter.ast)
    except SCIMException as exc:
        if isinstance(exc, InvalidFilterException):
            raise
        raise InvalidFilterException(detail=f"invalid filter {text!r}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise InvalidFilterException(detail=f"invalid filter {text!r}: {exc}") from None


def user_filter(text: str | None) -> ColumnElement[bool]:
    """Return the SQL condition for a filter on Users; no filter matches all."""
    if not text or not text.strip():
        return true()
    scim_filter = _parse(text, UserResource)
    visitor = _SqlVisitor(
        scim_filter, USER_ATTRIBUTES, USER_MULTI_VALUED, USER_FILTERABLE
    )
    return _translate(visitor, text)


def group_filter(text: str | None) -> ColumnElement[bool]:
    """Return the SQL condition for a filter on Groups; no filter matches all."""
    if not text or not text.strip():
        return true()
    scim_filter = _parse(text, GroupResource)
    visitor = _SqlVisitor(
        scim_filter, GROUP_ATTRIBUTES, GROUP_MULTI_VALUED, GROUP_FILTERABLE
    )
    return _translate(visitor, text)
