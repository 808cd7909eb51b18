"""Exact numeric fields: uint256-sized integers and decimals that never pass through float.

PostgreSQL stores them as NUMERIC (exact). SQLite's NUMERIC affinity turns large values into
8-byte floats, so there they are stored as TEXT and converted in Python (rotki does the same).
Sums over these columns on SQLite must be done in Python (see ``queries.exact_sum``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import connection, models

UINT256_MAX = 2**256 - 1
AMOUNT_DIGITS = 78  # len(str(2**256 - 1))
# Rounding a value to its column's places must never depend on the thread's context: the default one
# (28 digits) raises InvalidOperation for $10bn with 18 places. 300 digits holds uint256 amounts times
# prices; Emax/Emin keep any exponent a Decimal can carry in range.
_PLACES = Context(prec=300, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999)


class AmountField(models.Field):
    """An integer in base units (wei, satoshi, lamport...), signed, up to 78 digits."""

    description = "Exact integer amount in base units (up to uint256)"
    digits = AMOUNT_DIGITS

    def db_type(self, connection):
        if connection.vendor == "postgresql":
            return f"numeric({self.digits},0)"
        return "text"

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return int(Decimal(value)) if not isinstance(value, int) else value

    def to_python(self, value):
        if value is None or isinstance(value, int):
            return value
        if isinstance(value, float):
            raise ValidationError("amounts must not be floats")
        try:
            dec = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValidationError(f"{value!r} is not an integer amount") from None
        if dec != dec.to_integral_value():
            raise ValidationError(f"{value!r} is not an integer amount")
        return int(dec)

    def get_prep_value(self, value):
        value = self.to_python(super().get_prep_value(value))
        if value is not None and abs(value) >= 10**self.digits:
            raise ValidationError(f"amount has more than {self.digits} digits")
        return value

    def get_db_prep_value(self, value, connection, prepared=False):
        if not prepared:
            value = self.get_prep_value(value)
        if value is None:
            return None
        return Decimal(value) if connection.vendor == "postgresql" else str(value)

    def formfield(self, **kwargs):
        from django import forms

        # Through Field.formfield so blank/null/default/choices apply (blank=True must mean "not required").
        return super().formfield(**{"form_class": forms.CharField, **kwargs})


class TotalAmountField(AmountField):
    """A sum of amounts in base units (a scope's total of one asset), up to 100 digits: uint256
    balances of a token in many wallets add up past 78."""

    description = "Exact integer sum of amounts in base units"
    digits = 100


class ExactDecimalField(models.Field):
    """A Decimal (prices, values, FX rates) stored exactly: NUMERIC(p,s) on PostgreSQL, TEXT on SQLite."""

    description = "Exact decimal"

    def __init__(self, *args, max_digits: int = 40, decimal_places: int = 18, **kwargs):
        self.max_digits, self.decimal_places = max_digits, decimal_places
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["max_digits"], kwargs["decimal_places"] = self.max_digits, self.decimal_places
        return name, path, args, kwargs

    def db_type(self, connection):
        if connection.vendor == "postgresql":
            return f"numeric({self.max_digits},{self.decimal_places})"
        return "text"

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))

    def to_python(self, value):
        if value is None or isinstance(value, Decimal):
            return value
        if isinstance(value, float):
            raise ValidationError("decimal values must not be floats")
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:
            raise ValidationError(f"{value!r} is not a decimal number") from None

    def get_prep_value(self, value):
        return self.to_python(super().get_prep_value(value))

    def to_places(self, value: Decimal | None) -> Decimal | None:
        """``value`` as the column stores it: rounded half-even to ``decimal_places`` when it has more,
        exactly, whatever its size (see ``_PLACES``)."""
        if value is None or not value.is_finite() or value.as_tuple().exponent >= -self.decimal_places:
            return value
        return _PLACES.quantize(value, Decimal(1).scaleb(-self.decimal_places, _PLACES))

    def get_db_prep_value(self, value, connection, prepared=False):
        if not prepared:
            value = self.get_prep_value(value)
        if value is None:
            return None
        value = self.to_places(value)
        return value if connection.vendor == "postgresql" else format(value, "f")

    def formfield(self, **kwargs):
        from django import forms

        return super().formfield(
            **{"form_class": forms.DecimalField, "max_digits": self.max_digits, "decimal_places": self.decimal_places, **kwargs}
        )


def raw_rows(values_qs):
    """The tuples of a ``values_list`` query straight from the database cursor, in chunks: no field
    converter runs per row (amounts stay the stored text on SQLite, for an exact ``int()``)."""
    sql, params = values_qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(10_000):
            yield from chunk
