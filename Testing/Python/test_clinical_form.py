"""The panel's Clinical data section: one .ui row per clinical column, and what its fields hand the Logic."""

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from LVIPredictorLib import clinical, weights
from LVIPredictorLib.errors import InputError
from slicer_headless import module_file  # noqa: F401  (puts LVIPredictorSlicerLib on the path)

UI_FILE = Path(__file__).resolve().parents[2] / "Resources" / "UI" / "LVIPredictor.ui"


@pytest.fixture
def clinical_form(module_file):
    from LVIPredictorSlicerLib import clinical_form

    return clinical_form


def _widgets():
    root = ElementTree.parse(str(UI_FILE)).getroot()
    return {w.get("name"): w for w in root.iter("widget")}


def _combined_card():
    return weights.load_card(weights.resolve_card("demo-dce-clinical_combined"))


@pytest.mark.parametrize("column", clinical.NAMES)
def test_every_clinical_column_has_its_row_in_the_panel(clinical_form, column):
    # The Widget reaches the fields by name (getattr), which the .ui checks cannot see: a new column
    # in LVIPredictorLib.clinical must come with its row here.
    widgets = _widgets()
    assert widgets[clinical_form.labelName(column)].get("class") == "QLabel"
    field = widgets[clinical_form.fieldName(column)]
    if clinical_form.isBinary(column):
        assert field.get("class") == "QComboBox"
        items = [item.find("property/string").text for item in field.findall("item")]
        assert items == [label for label, _value in clinical_form.BINARY_CHOICES]
    else:
        assert field.get("class") == "QLineEdit"


def test_the_fields_values_are_what_lvi_predict_reads(clinical_form):
    card = _combined_card()
    texts = {"age": " 52 ", "tumour_size_mm": "", "ki67": "14"}
    choices = {"mri_aln": 0, "peritumoral_edema": 2, "her2": 1}
    values = clinical_form.values(texts, choices)
    assert values == {"age": "52", "tumour_size_mm": "", "mri_aln": "", "peritumoral_edema": "1", "her2": "0",
                      "ki67": "14"}
    parsed = clinical.parse_clinical(values, card)
    assert parsed == {"age": 52.0, "tumour_size_mm": None, "mri_aln": None, "peritumoral_edema": 1.0, "her2": 0.0,
                      "ki67": 14.0}
    # A value out of range is refused by the library, naming the column, as on the command line.
    with pytest.raises(InputError, match="ki67 = 140 is outside the allowed values"):
        clinical.parse_clinical(clinical_form.values({"ki67": "140"}, {}), card)


def test_the_section_says_which_model_reads_the_values_and_what_missing_means(clinical_form):
    card = _combined_card()
    assert list(clinical_form.inputs([card])) == list(clinical.NAMES)
    required = clinical_form.introText([card], required=True)
    optional = clinical_form.introText([card], required=False)
    assert "demo-dce-clinical_combined combines these values with the images; give at least one" in required
    assert "with none, only the imaging models run" in optional
    for text in (required, optional):
        assert card["clinical"]["imputation"]["rule"] in text and "never zero" in text
    assert clinical_form.introText([], required=True) == ""
    age = clinical_form.inputs([card])["age"]
    assert clinical_form.toolTip(age) == "age at MRI (15 to 110 years). Leave it empty when it was not recorded."
