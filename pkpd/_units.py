"""Units of measure: quantities from text and conversions between units.

Built on `pint <https://pint.readthedocs.io>`_: a quantity is a pint
``Quantity`` (magnitude and unit) from one registry shared by the package.
Two things pint does not know are added here:

- mass <-> amount of substance with a molar mass (ng/mL <-> nmol/mL,
  mg/dL <-> mmol/L, mg/h <-> mmol/h, ...): ``convert(..., molar_mass=...)``;
- grams of magnesium sulfate heptahydrate as an amount of magnesium: the unit
  ``MgSO4_7H2O`` is the factor 4.06 mmol Mg per g of salt, so ``"3 g MgSO4·7H2O"``
  is 12.18 mmol and ``"2 g/h MgSO4·7H2O"`` is 8.12 mmol/h.

Doses per body weight (``mg/kg``) are dimensionless for pint; they are told
apart from fractions and percentages by a mass in the denominator, so
``"8 %"`` is never accepted where ``mg/kg`` is expected.

Examples
--------
>>> from pkpd._units import convert, parse_quantity
>>> parse_quantity("35 d", "arms[0].period").to("h").magnitude
840.0
>>> round(convert(10.0, "ng/mL", "nmol/mL", molar_mass=KETAMINE_MOLAR_MASS), 5)
0.04206
>>> round(convert(3.0, "g MgSO4·7H2O", "mmol"), 2)
12.18
"""

import functools
import math
import re

import numpy as np
import pint

from ._errors import PkpdError, shown

__all__ = ["parse_quantity", "parse_unit", "per_mass", "convert", "magnitude_in", "registry", "KETAMINE_MOLAR_MASS",
           "NORKETAMINE_MOLAR_MASS", "KETAMINE_HYDROCHLORIDE_MOLAR_MASS", "MAGNESIUM_MOLAR_MASS",
           "MGSO4_7H2O_MOLAR_MASS", "MMOL_MG_PER_G_MGSO4_7H2O"]

# Molar masses in g/mol. Ketamine and norketamine are computed from their
# formulas with IUPAC standard atomic weights (C 12.011, H 1.008, Cl 35.45,
# N 14.007, O 15.999); 237.73 is also the value of nlmixr2lib's Simons_2022
# model (LITERATURE.md, "Unit facts").
KETAMINE_MOLAR_MASS = 237.73            # C13H16ClNO, free base
NORKETAMINE_MOLAR_MASS = 223.70         # C12H14ClNO, free base
KETAMINE_HYDROCHLORIDE_MOLAR_MASS = 274.19  # C13H16ClNO.HCl (237.73 + 36.46)
MAGNESIUM_MOLAR_MASS = 24.305           # IUPAC conventional atomic weight of Mg
MGSO4_7H2O_MOLAR_MASS = 246.47          # MgSO4.7H2O (nlmixr2lib Easterling_2018 / Du_2019)

#: mmol of Mg in 1 g of magnesium sulfate heptahydrate: 1000 / 246.47 = 4.057,
#: rounded to 4.06 as LITERATURE.md ("Unit facts", checked against nlmixr2lib
#: Du_2019 and Brewer 2001 "5 g/20 mmol") and the French SmPC of the 15 %
#: solution (2 g = 8 mmol; 20-mL ampoule = 3 g = 12.2 mmol, LITERATURE-2.md section 1).
MMOL_MG_PER_G_MGSO4_7H2O = 4.06

_SALT_UNIT = "MgSO4_7H2O"
# "MgSO4·7H2O", "MgSO4.7H2O", "MgSO4*7H2O", "MgSO4 7H2O", "MgSO4_7H2O" (any case of "h2o")
_SALT_SPELLING = re.compile(r"MgSO4\s*[·⋅•.*_ ]?\s*7\s*H2O", re.IGNORECASE)
_STARTS_WITH_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(\s|$|[a-zA-Zµμ%/])")


@functools.cache
def registry():
    """The package's pint ``UnitRegistry`` (created once)."""
    units = pint.UnitRegistry()
    units.define(f"{_SALT_UNIT} = {MMOL_MG_PER_G_MGSO4_7H2O} mmol / g")
    units.define("wk = week")
    return units


def _normalise(text):
    return _SALT_SPELLING.sub(_SALT_UNIT, str(text).strip())


def per_mass(units):
    """True when a unit has a mass in its denominator (mg/kg, mg/kg/h, mmol/kg)."""
    ureg = registry()
    return any(power < 0 and ureg.get_dimensionality(name) == ureg.get_dimensionality("kg")
               for name, power in units._units.items())


def parse_unit(unit, key="unit"):
    """`unit` (text such as ``"ng/mL"``; empty, ``"1"`` or ``"dimensionless"`` for none) as a pint unit.

    Raises PkpdError at `key` when pint cannot read it."""
    ureg = registry()
    text = _normalise(unit)
    if text in ("", "1", "dimensionless"):
        return ureg.dimensionless
    try:
        return ureg.parse_units(text)
    except Exception as error:  # pint's parser raises many types for malformed text
        raise PkpdError("must be a unit such as 'mg', 'h' or 'ng/mL'", key=key, value=unit,
                        got=f"{shown(unit)} ({error})", sentence=True) from None


def _describe(units):
    ureg = registry()
    dimension = ureg.get_dimensionality(units)
    text = str(units) if str(units) else "dimensionless"
    return f"{text} ({dimension or 'dimensionless'})"


def _compatible(quantity_units, expected_units):
    return (registry().get_dimensionality(quantity_units) == registry().get_dimensionality(expected_units)
            and per_mass(quantity_units) == per_mass(expected_units))


def parse_quantity(text, key, *, expected=None, positive=False):
    """A quantity from text such as ``"0.5 mg/kg"``, ``"2 h"``, ``"35 d"`` or ``"10 ng/mL"``.

    Parameters
    ----------
    text : str
        A number followed by a unit. Magnesium sulfate heptahydrate may be
        named after the unit (``"3 g MgSO4·7H2O"``): it becomes an amount of
        magnesium (12.18 mmol).
    key : str
        Where the text comes from (a key path or column), for error messages.
    expected : str or sequence of str, optional
        Unit(s) the quantity must be convertible to, e.g. ``"h"`` or
        ``["mg", "mg/kg"]``. A dose per body weight matches only a unit
        per body weight.
    positive : bool, optional
        Require a magnitude > 0.

    Returns
    -------
    pint.Quantity

    Raises
    ------
    PkpdError
        One line naming `key`, the rule and the value: unparseable text, a
        missing unit, a non-finite or non-positive number, a wrong dimension.

    Examples
    --------
    >>> parse_quantity("0.5 mg/kg", "dose", expected=["mg", "mg/kg"])
    <Quantity(0.5, 'milligram / kilogram')>
    >>> parse_quantity("2 h", "duration", expected="mg")
    Traceback (most recent call last):
    ...
    pkpd._errors.PkpdError: `duration` must be in units compatible with 'mg' ([mass]); got '2 h' (hour, [time]).
    """
    ureg = registry()
    rule = "must be a number followed by a unit, such as '2 h', '0.5 mg/kg' or '10 ng/mL'"
    if not isinstance(text, str):
        raise PkpdError(rule, key=key, value=text, sentence=True)
    normalised = _normalise(text)
    if not _STARTS_WITH_NUMBER.match(normalised):
        raise PkpdError(rule, key=key, value=text, sentence=True)
    try:
        quantity = ureg.Quantity(normalised)
    except Exception as error:  # pint's parser raises many types (tokenize errors too)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PkpdError(rule, key=key, value=text, got=f"{shown(text)} ({reason})", sentence=True) from None
    if not isinstance(quantity, ureg.Quantity):  # a bare number
        quantity = ureg.Quantity(quantity, ureg.dimensionless)
    magnitude = quantity.magnitude
    if not isinstance(magnitude, (int, float)) or not math.isfinite(magnitude):
        raise PkpdError("must be a finite number with a unit", key=key, value=text, sentence=True)
    quantity = ureg.Quantity(float(magnitude), quantity.units)
    if positive and not magnitude > 0:
        raise PkpdError("must be positive", key=key, value=text, sentence=True)
    if expected is not None:
        choices = [expected] if isinstance(expected, str) else list(expected)
        targets = [parse_unit(unit, f"{key} (expected unit)") for unit in choices]
        if not any(_compatible(quantity.units, target) for target in targets):
            wanted = " or ".join(f"{unit!r} ({ureg.get_dimensionality(target) or 'dimensionless'}"
                                 f"{', per body weight' if per_mass(target) else ''})"
                                 for unit, target in zip(choices, targets))
            if quantity.units._units:
                dimension = ureg.get_dimensionality(quantity.units) or "dimensionless"
                found = f"{quantity.units}, {dimension}"
            else:
                found = "no unit"
            raise PkpdError(f"must be in units compatible with {wanted}", key=key, value=text,
                            got=f"{shown(text)} ({found})", sentence=True)
    return quantity


def _molar_mass(molar_mass, key="molar_mass"):
    ureg = registry()
    if isinstance(molar_mass, ureg.Quantity):
        quantity = molar_mass
    elif isinstance(molar_mass, str):
        quantity = parse_quantity(molar_mass, key, expected="g/mol", positive=True)
    elif isinstance(molar_mass, (int, float)) and not isinstance(molar_mass, bool):
        quantity = ureg.Quantity(float(molar_mass), "g/mol")
    else:
        raise PkpdError("must be a number in g/mol or a quantity such as '237.73 g/mol'", key=key,
                        value=molar_mass, sentence=True)
    if ureg.get_dimensionality(quantity.units) != ureg.get_dimensionality("g/mol"):
        raise PkpdError("must be a mass per amount of substance (g/mol)", key=key, value=molar_mass,
                        got=str(quantity), sentence=True)
    if not (math.isfinite(quantity.magnitude) and quantity.magnitude > 0):
        raise PkpdError("must be positive", key=key, value=molar_mass, got=str(quantity), sentence=True)
    return quantity


def convert(value, from_unit, to_unit, *, molar_mass=None):
    """Convert a number (or array) between units.

    Parameters
    ----------
    value : float or array_like
        Magnitude(s) in `from_unit`.
    from_unit, to_unit : str
        Units, e.g. ``"ng/mL"``, ``"nmol/mL"``, ``"mg/dL"``, ``"mmol/L"``,
        ``"g MgSO4·7H2O"``, ``"mmol"``, ``"L/h"``.
    molar_mass : float (g/mol), str or pint.Quantity, optional
        Needed to convert between a mass and an amount of substance
        (ng/mL <-> nmol/mL, mg/dL <-> mmol/L, mg <-> mmol, mg/h <-> mmol/h).

    Returns
    -------
    float or ndarray
        Magnitude(s) in `to_unit`.

    Raises
    ------
    PkpdError
        Unknown units, or dimensions that cannot be converted (with the
        molar mass, if one was given).

    Examples
    --------
    >>> round(convert(2.4305, "mg/dL", "mmol/L", molar_mass=MAGNESIUM_MOLAR_MASS), 6)
    1.0
    >>> round(convert(12.18, "mmol", "g MgSO4·7H2O"), 6)
    3.0
    >>> convert(1.0, "d", "h")
    24.0
    """
    ureg = registry()
    source = parse_unit(from_unit, "from_unit")
    target = parse_unit(to_unit, "to_unit")
    scalar = np.ndim(value) == 0
    quantity = ureg.Quantity(np.asarray(value, dtype=np.float64), source)
    if per_mass(source) != per_mass(target):
        raise PkpdError(f"cannot convert {from_unit!r} to {to_unit!r}: only one of them is per body weight.")
    candidates = [quantity]
    if molar_mass is not None:
        mass = _molar_mass(molar_mass)
        candidates += [quantity / mass, quantity * mass]  # mass -> substance, substance -> mass
    for candidate in candidates:
        if ureg.get_dimensionality(candidate.units) == ureg.get_dimensionality(target):
            result = candidate.to(target).magnitude
            return float(result) if scalar else result
    extra = "" if molar_mass is not None else " (a mass <-> amount conversion needs molar_mass)"
    raise PkpdError(f"cannot convert {from_unit!r} ({_describe(source)}) to {to_unit!r} "
                    f"({_describe(target)}){extra}.")


def magnitude_in(quantity, unit, key, *, molar_mass=None):
    """The magnitude of a quantity (or quantity text) in `unit`, as a float.

    Examples
    --------
    >>> magnitude_in("35 d", "h", "arms[0].every")
    840.0
    >>> round(magnitude_in("3 g MgSO4·7H2O", "mmol", "arms[1].doses[1].amount"), 2)
    12.18
    """
    ureg = registry()
    if isinstance(quantity, str):
        quantity = parse_quantity(quantity, key)
    if not isinstance(quantity, ureg.Quantity):
        raise PkpdError("must be a quantity with a unit", key=key, value=quantity, sentence=True)
    try:
        return convert(quantity.magnitude, str(quantity.units), unit, molar_mass=molar_mass)
    except PkpdError:
        raise PkpdError(f"must be in units compatible with {unit!r}", key=key, value=quantity,
                        got=f"{quantity:~P} ({ureg.get_dimensionality(quantity.units) or 'dimensionless'})",
                        sentence=True) from None
