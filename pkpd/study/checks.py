"""The checks of a scenario file (:class:`Checker`) and its rule for dose amounts
(:func:`parse_amount`), below the scenario layer: the sections a scenario checks as it loads
([trial], [search], [uncertainty], [sensitivity]) use them too."""

from pathlib import Path

from .._errors import PkpdError, ScenarioError, suggestion
from .._units import magnitude_in, parse_quantity, per_mass


class Checker:
    """The checks of a scenario file, each failing with a one-line ScenarioError that names the file
    and the key path."""

    def __init__(self, path):
        self.path = Path(path)
        self._parsed = {}  # (text, unit, ...) -> magnitude: a sweep repeats each value across many arms

    def fail(self, key, rule, **found):
        """Raise ScenarioError at `key`; ``value=`` is written as its repr, unless ``got=`` says how."""
        if "value" in found:
            found.setdefault("got", repr(found["value"]))
        raise ScenarioError(rule, file=self.path.name, key=key, **found)

    def refuse(self, key, error):
        """Fail at `key` with the rule and value of `error`, a PkpdError of a check that knew no file."""
        self.fail(key, error.rule, **error.fields())

    def keys(self, key, table, allowed, required=None):
        """Refuse a `table` that is not one, has a key not `allowed` or lacks a required one (`required`,
        by default ``allowed.required`` of a :class:`~pkpd._keys.Keys`)."""
        if required is None:
            required = getattr(allowed, "required", ())
        if not isinstance(table, dict):
            self.fail(key, "must be a table", value=table, got=f"{type(table).__name__} {table!r}")
        for name in table:
            if name not in allowed:
                extra = suggestion(name, allowed, "allowed")
                self.fail(f"{key}.{name}" if key else name, f"unknown key{extra}")
        for name in required:
            if name not in table:
                self.fail(f"{key}.{name}" if key else name, "is required")

    def quantity(self, key, text, expected, positive=True):
        try:
            return parse_quantity(text, key, expected=expected, positive=positive)
        except PkpdError as error:
            self.refuse(key, error)

    def magnitude(self, key, text, unit, positive=True, molar_mass=None):
        memo = ("magnitude", text, unit, positive, molar_mass) if isinstance(text, str) else None
        if memo in self._parsed:
            return self._parsed[memo]
        quantity = self.quantity(key, text, None, positive)
        try:
            value = magnitude_in(quantity, unit, key, molar_mass=molar_mass)
        except PkpdError as error:
            self.refuse(key, error)
        if memo is not None:
            self._parsed[memo] = value
        return value

    def integer(self, key, value, minimum=0):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(key, f"must be an integer >= {minimum}", value=value)
        return value

    def string(self, key, value):
        if not isinstance(value, str):
            self.fail(key, "must be a string", value=value)
        return value

    def amount(self, key, text, unit, drug, rate=False):
        """Magnitude in `unit` (or `unit`/kg) and whether it is per body weight."""
        memo = ("amount", text, unit, id(drug), rate) if isinstance(text, str) else None
        if memo not in self._parsed:
            self._parsed[memo] = _parse_amount(self, key, text, unit, drug, rate)
        return self._parsed[memo]


def parse_amount(text, unit, drug, key, *, rate=False):
    """A dose amount (or rate) with a unit as a scenario's doses read it: (magnitude in `unit`, or in
    `unit`/kg, and whether it is per kg), the drug's conversions (e.g. g of MgSO4·7H2O) included.

    Raises ScenarioError naming `key` (the caller adds its file).
    """
    return Checker(Path("-")).amount(key, text, unit, drug, rate=rate)


def _parse_amount(check, key, text, unit, drug, rate):
    quantity = check.quantity(key, text, None, positive=True)
    per_kg = per_mass(quantity.units)
    target = f"{unit}/kg" if per_kg else unit
    molar_mass = drug.get("molar_mass")
    try:
        return magnitude_in(quantity, target, key, molar_mass=molar_mass), per_kg
    except PkpdError:
        pass
    conversions = drug.get("conversions", {})
    drug_unit = drug.get("unit")
    compartment_base = unit.split("/")[0]
    if drug_unit and compartment_base in conversions:
        drug_target = target.replace(compartment_base, drug_unit, 1)
        try:
            return magnitude_in(quantity, drug_target, key, molar_mass=molar_mass) * conversions[compartment_base], per_kg
        except PkpdError:
            pass
    kind = "rate" if rate else "amount"
    check.fail(key, f"must be an {kind} in units compatible with {unit!r}"
                    f"{' (or per kg)' if not per_kg else ''}", value=text)
