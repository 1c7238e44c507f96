"""A threshold or window on a concentration says, or inherits, the matrix it was measured in (issue 16).

Bare numbers inherit the output's matrix; the table form ``{ level = ..., matrix = ... }`` states it,
and a matrix other than the output's is refused with a one-line error naming the key and the output
that does have that matrix (a venous target is never compared with an arterial curve).
"""

import pytest

from pkpd._errors import ScenarioError
from pkpd._scenario import load_scenario

pytestmark = pytest.mark.models("ketamine_kamp2020")


def _scenario(tmp_path, outputs):
    path = tmp_path / "s.toml"
    path.write_text('model = "ketamine_kamp2020"\nseed = 1\n[population]\nn = 2\n[[arms]]\nname = "k"\n'
                    'doses = [{ drug = "ketamine", amount = "0.5 mg/kg", duration = "40 min" }]\n'
                    f'[outputs]\ntimes = ["0 h", "1 h"]\nvariables = ["KETAMINE", "KETAMINE_VEN"]\n{outputs}\n')
    return path


def test_a_stated_matrix_equal_to_the_outputs_is_the_same_level(tmp_path):
    stated = load_scenario(_scenario(tmp_path, 'thresholds = { KETAMINE_VEN = [{ level = "10.5 ng/mL", '
                                               'matrix = "venous plasma" }] }\n'
                                               'windows = { KETAMINE = { window = ["10 ng/mL", "150 ng/mL"], '
                                               'matrix = "arterial plasma" } }'))
    bare = load_scenario(_scenario(tmp_path, 'thresholds = { KETAMINE_VEN = ["10.5 ng/mL"] }\n'
                                             'windows = { KETAMINE = ["10 ng/mL", "150 ng/mL"] }'))
    assert stated.thresholds == bare.thresholds == {"KETAMINE_VEN": [10.5]}
    assert stated.windows == bare.windows == {"KETAMINE": [(10.0, 150.0)]}


@pytest.mark.parametrize(("outputs", "message"), [
    ('thresholds = { KETAMINE = [{ level = "10.5 ng/mL", matrix = "venous plasma" }] }',
     "outputs.thresholds.KETAMINE[0].matrix: output 'KETAMINE' is ketamine, racemic, arterial plasma; a level measured "
     "in venous plasma cannot be compared with it; compare it with KETAMINE_VEN"),
    ('windows = { KETAMINE_VEN = [{ window = ["10 ng/mL", "150 ng/mL"], matrix = "arterial plasma" }] }',
     "outputs.windows.KETAMINE_VEN[0].matrix: output 'KETAMINE_VEN' is ketamine, racemic, venous plasma; a window measured "
     "in arterial plasma cannot be compared with it; compare it with KETAMINE"),
    ('thresholds = { KETAMINE = [{ level = "10.5 ng/mL", matrix = "serum" }] }',
     "model 'ketamine_kamp2020' has no ketamine, racemic output in 'serum'"),
    ('thresholds = { KETAMINE = [{ level = "10.5 ng/mL" }] }', "outputs.thresholds.KETAMINE[0].matrix: is required"),
])
def test_a_matrix_the_output_does_not_have_is_a_one_line_error_naming_the_key(tmp_path, outputs, message):
    with pytest.raises(ScenarioError) as error:
        load_scenario(_scenario(tmp_path, outputs))
    assert message in str(error.value) and "\n" not in str(error.value)
