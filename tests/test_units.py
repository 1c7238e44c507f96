"""Tests of units of measure (pkpd._units): parsing quantities and converting units.

Conversions are checked both ways against hand-computed values (molar masses,
4.06 mmol Mg per g of MgSO4.7H2O, 24.305 g/mol for serum magnesium).
"""

import numpy as np
import pytest

from pkpd._errors import PkpdError
from pkpd._units import (
    KETAMINE_HYDROCHLORIDE_MOLAR_MASS,
    KETAMINE_MOLAR_MASS,
    MAGNESIUM_MOLAR_MASS,
    MGSO4_7H2O_MOLAR_MASS,
    MMOL_MG_PER_G_MGSO4_7H2O,
    NORKETAMINE_MOLAR_MASS,
    convert,
    magnitude_in,
    parse_quantity,
    registry,
)


# --- parse_quantity -----------------------------------------------------------------

@pytest.mark.parametrize("text, unit, magnitude", [
    ("0.5 mg/kg", "mg/kg", 0.5),
    ("2 h", "h", 2.0),
    ("35 d", "h", 840.0),
    ("3 g", "mg", 3000.0),
    ("10 ng/mL", "mg/L", 0.01),
    ("0.5 mg/kg/h", "mg/kg/h", 0.5),
    ("8.3 min", "h", 8.3 / 60),
    ("1 wk", "d", 7.0),
    ("2.4305 mg/dL", "mg/L", 24.305),
    ("5 ug/mL", "ng/mL", 5000.0),
    ("5 µg/mL", "ng/mL", 5000.0),
    ("8 %", "1", 0.08),
    ("1e-3 L", "mL", 1.0),
])
def test_parse_quantity_reads_numbers_with_units(text, unit, magnitude):
    quantity = parse_quantity(text, "key")
    assert isinstance(quantity, registry().Quantity)
    assert quantity.to(unit).magnitude == pytest.approx(magnitude, rel=1e-12)
    assert isinstance(quantity.magnitude, float)


def test_parse_quantity_accepts_any_of_several_expected_units():
    assert parse_quantity("0.5 mg/kg", "dose", expected=["mg", "mg/kg"]).magnitude == 0.5
    assert parse_quantity("35 mg", "dose", expected=["mg", "mg/kg"]).magnitude == 35.0
    assert parse_quantity("2 g/h", "rate", expected="mg/h").to("mg/h").magnitude == 2000.0


@pytest.mark.parametrize("text", ["abc", "", "h", "mg 5", "1 mg/kg over 4 h", "2 parsecs of pain", "nan h",
                                  "inf mg", "1e400 mg", "2 h)"])
def test_parse_quantity_refuses_unparseable_text(text):
    with pytest.raises(PkpdError) as error:
        parse_quantity(text, "arms[0].doses[1].amount")
    message = str(error.value)
    assert "\n" not in message
    assert "`arms[0].doses[1].amount`" in message and repr(text) in message and "must" in message


@pytest.mark.parametrize("value", [None, 5, 2.5, ["2 h"]])
def test_parse_quantity_refuses_non_text(value):
    with pytest.raises(PkpdError, match=r"`duration` must be a number followed by a unit"):
        parse_quantity(value, "duration")


@pytest.mark.parametrize("text, expected", [
    ("2 h", "mg"),
    ("3 mg", "h"),
    ("10 ng/mL", "mg"),
    ("8 %", "mg/kg"),          # a fraction is not a dose per body weight ...
    ("0.5 mg/kg", "1"),        # ... and a dose per body weight is not a fraction
    ("0.5 mg/kg", "mg"),
    ("35 mg", "mg/kg"),
    ("2", "h"),                # no unit
])
def test_parse_quantity_refuses_incompatible_dimensions(text, expected):
    with pytest.raises(PkpdError) as error:
        parse_quantity(text, "arms[1].doses[0].duration", expected=expected)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("`arms[1].doses[0].duration` must be in units compatible with")
    assert repr(text) in message and repr(expected) in message


def test_parse_quantity_positive_rule():
    assert parse_quantity("2 h", "duration", positive=True).magnitude == 2.0
    for text in ("-2 h", "0 h"):
        with pytest.raises(PkpdError, match=r"^`duration` must be positive; got '" + text + "'.$"):
            parse_quantity(text, "duration", positive=True)


def test_parse_quantity_names_an_unknown_expected_unit():
    with pytest.raises(PkpdError, match="expected unit"):
        parse_quantity("2 h", "duration", expected="furlongs per blorp")


# --- convert: both directions -----------------------------------------------------------

def test_ketamine_mass_and_molar_concentrations():
    # 1 nmol/mL = 237.73 ng/mL (ketamine) and 223.70 ng/mL (norketamine).
    assert convert(237.73, "ng/mL", "nmol/mL", molar_mass=KETAMINE_MOLAR_MASS) == pytest.approx(1.0, rel=1e-12)
    assert convert(1.0, "nmol/mL", "ng/mL", molar_mass=KETAMINE_MOLAR_MASS) == pytest.approx(237.73, rel=1e-12)
    assert convert(0.51, "nmol/mL", "ng/mL", molar_mass=KETAMINE_MOLAR_MASS) == pytest.approx(121.24, rel=1e-4)
    assert convert(223.70, "ng/mL", "nmol/mL", molar_mass=NORKETAMINE_MOLAR_MASS) == pytest.approx(1.0, rel=1e-12)
    assert convert(2.0, "umol/L", "ng/mL", molar_mass=NORKETAMINE_MOLAR_MASS) == pytest.approx(447.40, rel=1e-12)
    values = np.array([10.0, 100.0, 150.0])
    there = convert(values, "ng/mL", "nmol/mL", molar_mass=KETAMINE_MOLAR_MASS)
    np.testing.assert_allclose(there, values / 237.73, rtol=1e-12)
    np.testing.assert_allclose(convert(there, "nmol/mL", "ng/mL", molar_mass=KETAMINE_MOLAR_MASS), values,
                               rtol=1e-12)


def test_molar_mass_given_as_text_or_quantity():
    text = convert(237.73, "ng/mL", "nmol/mL", molar_mass="237.73 g/mol")
    quantity = convert(237.73, "ng/mL", "nmol/mL", molar_mass=registry().Quantity(0.23773, "kg/mol"))
    assert text == pytest.approx(1.0, rel=1e-12) and quantity == pytest.approx(1.0, rel=1e-12)
    for bad in ("237.73 g", -1.0, 0.0, "x", True):
        with pytest.raises(PkpdError):
            convert(1.0, "ng/mL", "nmol/mL", molar_mass=bad)


@pytest.mark.parametrize("spelling", ["g MgSO4·7H2O", "g MgSO4.7H2O", "g MgSO4*7H2O", "g MgSO4_7H2O",
                                      "g MgSO4 7H2O", "g MgSO4⋅7H2O"])
def test_magnesium_sulfate_heptahydrate_grams_to_mmol_magnesium(spelling):
    assert convert(1.0, spelling, "mmol") == pytest.approx(4.06, rel=1e-12)
    assert convert(3.0, spelling, "mmol") == pytest.approx(12.18, rel=1e-12)
    assert convert(12.18, "mmol", spelling) == pytest.approx(3.0, rel=1e-12)


def test_magnesium_sulfate_doses_rates_and_elemental_mass():
    # 2 g/h = 8.12 mmol/h; 60 mg/kg = 0.2436 mmol/kg; 1 g salt = 98.68 mg elemental Mg.
    assert convert(2.0, "g/h MgSO4·7H2O", "mmol/h") == pytest.approx(8.12, rel=1e-12)
    assert convert(8.12, "mmol/h", "g/h MgSO4·7H2O") == pytest.approx(2.0, rel=1e-12)
    assert convert(60.0, "mg/kg MgSO4·7H2O", "mmol/kg") == pytest.approx(0.2436, rel=1e-12)
    assert convert(1.0, "g MgSO4·7H2O", "mg", molar_mass=MAGNESIUM_MOLAR_MASS) == pytest.approx(98.678, rel=1e-5)
    assert convert(98.678, "mg", "g MgSO4·7H2O", molar_mass=MAGNESIUM_MOLAR_MASS) == pytest.approx(1.0, rel=1e-5)
    assert parse_quantity("3 g MgSO4·7H2O", "dose", expected="mmol").to("mmol").magnitude == pytest.approx(12.18)
    assert magnitude_in("4 g MgSO4.7H2O", "mmol", "dose") == pytest.approx(16.24)


def test_the_heptahydrate_constant_matches_its_molar_mass():
    # 1000 mg / 246.47 g/mol = 4.057 mmol, rounded to 4.06 (LITERATURE.md, 'Unit facts').
    assert MMOL_MG_PER_G_MGSO4_7H2O == pytest.approx(1000.0 / MGSO4_7H2O_MOLAR_MASS, abs=0.005)
    water, sulfate = 2 * 1.008 + 15.999, 32.06 + 4 * 15.999
    assert MGSO4_7H2O_MOLAR_MASS == pytest.approx(MAGNESIUM_MOLAR_MASS + sulfate + 7 * water, abs=0.02)
    assert KETAMINE_HYDROCHLORIDE_MOLAR_MASS == pytest.approx(KETAMINE_MOLAR_MASS + 1.008 + 35.45, abs=0.01)


def test_serum_magnesium_mg_per_dl_and_mmol_per_l():
    # 1 mmol/L = 24.305 mg/L = 2.4305 mg/dL; Brookfield's 7.2 mg/dL = 2.962 mmol/L.
    assert convert(1.0, "mmol/L", "mg/dL", molar_mass=MAGNESIUM_MOLAR_MASS) == pytest.approx(2.4305, rel=1e-12)
    assert convert(2.4305, "mg/dL", "mmol/L", molar_mass=MAGNESIUM_MOLAR_MASS) == pytest.approx(1.0, rel=1e-12)
    assert convert(7.2, "mg/dL", "mmol/L", molar_mass=MAGNESIUM_MOLAR_MASS) == pytest.approx(2.9623, rel=1e-4)
    assert convert(0.74, "mmol/L", "mg/dL", molar_mass=MAGNESIUM_MOLAR_MASS) == pytest.approx(1.7986, rel=1e-4)
    assert convert(4.97, "mg/L", "mmol/L", molar_mass=MAGNESIUM_MOLAR_MASS) == pytest.approx(0.20448, rel=1e-4)


def test_same_dimension_conversions_need_no_molar_mass():
    assert convert(1.0, "d", "h") == 24.0
    assert convert(840.0, "h", "d") == pytest.approx(35.0)
    assert convert(1.4, "L/min", "L/h") == pytest.approx(84.0)
    assert convert(0.5, "mg/kg/h", "ug/kg/min") == pytest.approx(8.3333333, rel=1e-7)
    assert convert(100.0, "ng/mL", "mg/L") == pytest.approx(0.1)


@pytest.mark.parametrize("source, target, molar_mass", [
    ("ng/mL", "nmol/mL", None),       # needs a molar mass
    ("mg", "h", None),
    ("mg", "h", KETAMINE_MOLAR_MASS),  # no molar mass makes these compatible
    ("mg/kg", "mg", None),             # per body weight on one side only
    ("mg", "mg/kg", KETAMINE_MOLAR_MASS),
    ("blorp", "mg", None),
])
def test_convert_refuses_incompatible_units(source, target, molar_mass):
    with pytest.raises(PkpdError) as error:
        convert(1.0, source, target, molar_mass=molar_mass)
    assert "\n" not in str(error.value)


def test_magnitude_in_names_the_key_on_a_wrong_dimension():
    assert magnitude_in("35 d", "h", "arms[0].every") == 840.0
    assert magnitude_in(parse_quantity("2 h", "x"), "min", "x") == pytest.approx(120.0)
    with pytest.raises(PkpdError, match=r"^`arms\[0\]\.every` must be in units compatible with 'h'"):
        magnitude_in("35 mg", "h", "arms[0].every")
