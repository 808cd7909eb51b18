"""``field__any=[...]``: membership in a list of ids that may be long (a sync group's 250 WalletChains).

Django's ``__in`` writes one placeholder per value. psycopg binds client-side, so each such statement
is text that it scans for placeholders again (its parse cache keeps short statements only) and that
the server parses and plans per value. ``__any`` is ``= ANY(%s)`` on PostgreSQL, with the whole list as
ONE array parameter (ints as the array's literal text: ``int_array``); elsewhere it is exactly ``__in``
(``RelatedIn`` on a foreign key), ints written into the statement as their digits. A list of plain
ints (ids) skips the per-value preparation; anything else is prepared as ``__in`` prepares it.
``any_of(ids)`` hands a long list to a filter as a frozenset, which the ORM does not walk value by value."""

from __future__ import annotations

from django.core.exceptions import EmptyResultSet
from django.db.models import Field, ForeignObject
from django.db.models.fields.related_lookups import RelatedIn
from django.db.models.lookups import In


_INT64 = 2**63


class _AnyOf:
    lookup_name = "any"

    def get_prep_lookup(self):
        if isinstance(self.rhs, (list, tuple, set, frozenset)) and all(type(v) is int for v in self.rhs):
            return list(self.rhs)
        return super().get_prep_lookup()

    def as_sql(self, compiler, connection):
        """Elsewhere ``__in``; ints (ids) are written into the statement as their digits, ``IN (1,2,3)``,
        instead of a placeholder each that Django prepares value by value (and SQLite caps in number)."""
        values = self.rhs
        if (self.rhs_is_direct_value() and isinstance(values, list) and values
                and all(type(v) is int and -_INT64 <= v < _INT64 for v in values)):
            lhs, lhs_params = self.process_lhs(compiler, connection)
            return f"{lhs} IN ({','.join(map(str, dict.fromkeys(values)))})", tuple(lhs_params)
        return super().as_sql(compiler, connection)

    def as_postgresql(self, compiler, connection):
        if not self.rhs_is_direct_value():
            return super().as_sql(compiler, connection)
        values = [v for v in self.rhs if v is not None]  # NULL is never equal to anything (as ``__in``)
        if not values:
            raise EmptyResultSet
        if not all(type(v) is int for v in values):
            field = self.lhs.output_field
            values = [getattr(field, "target_field", field).get_db_prep_value(getattr(v, "pk", v), connection, prepared=False)
                      for v in values]
        lhs, lhs_params = self.process_lhs(compiler, connection)
        placeholder, param = array_param(list(dict.fromkeys(values)))
        return f"{lhs} = ANY({placeholder})", (*lhs_params, param)


@Field.register_lookup
class AnyOf(_AnyOf, In):
    pass


@ForeignObject.register_lookup
class RelatedAnyOf(_AnyOf, RelatedIn):
    pass


def array_param(values: list) -> tuple[str, object]:
    """The placeholder and parameter of ``values`` as one PostgreSQL array, for ``= ANY(...)``: ints as
    the array's literal text (``%s::bigint[]``), anything else as the list psycopg adapts."""
    if all(type(v) is int for v in values):
        return "%s::bigint[]", int_array(values)
    return "%s", values


def int_array(values) -> str:
    """Ints as PostgreSQL's array literal (``{1,2,3}``), for a ``%s::bigint[]`` parameter: made at C
    speed, where psycopg dumps a list parameter element by element in Python."""
    return "{" + ",".join(map(str, values)) + "}"


def any_of(values) -> frozenset:
    """Ids for ``__any`` as the ORM passes them on untouched: a list or tuple in a filter is walked
    value by value (each one resolved as a possible expression) before the lookup sees it."""
    return frozenset(values)
