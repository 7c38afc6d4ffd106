"""Guards for the GUI code that cannot run here: every name it uses exists.

- every ``self.ui.<name>`` is an objectName in the .ui file;
- every ``slicer.util.*`` and ``slicer.vtk*`` name exists in Slicer (slicer-core);
- every widget class in the .ui file is a Qt class from a short list or a Slicer/CTK
  widget declared as a custom widget, and every qMRML* class the code names is one of those;
- every ``SlicerParameterName`` in the .ui file is a field of the parameter node.
"""

import ast
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import slicer

from slicer_headless import module_file  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
MODULE_FILE = REPO / "LVIPredictor" / "LVIPredictor.py"
# The Slicer-side helpers the module delegates to (they import slicer; the core never does).
SLICER_LIB_FILES = sorted((REPO / "LVIPredictor" / "LVIPredictorSlicerLib").glob("*.py"))
UI_FILE = REPO / "Resources" / "UI" / "LVIPredictor.ui"

# Plain Qt widgets the panel may use (all exist in every Qt 5 build Slicer ships).
QT_WIDGETS = {"QWidget", "QLabel", "QPushButton", "QComboBox", "QCheckBox", "QSpinBox", "QLineEdit",
              "QRadioButton", "QProgressBar", "QGroupBox"}
# Slicer/CTK widgets available in Slicer >= 5.8 with a Qt Designer plugin.
SLICER_WIDGETS = {"ctkCollapsibleButton", "ctkPathLineEdit", "qMRMLNodeComboBox", "qMRMLWidget",
                  "qMRMLSegmentEditorWidget"}


def _ui():
    return ElementTree.parse(str(UI_FILE)).getroot()


def _dottedNames(path, prefix):
    """Attribute chains like slicer.util.loadVolume -> 'loadVolume' for prefix 'slicer.util'."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute):
            chain, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                chain.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name):
                chain.insert(0, value.id)
                dotted = ".".join(chain)
                if dotted.startswith(prefix + "."):
                    names.add(dotted[len(prefix) + 1:].split(".")[0])
    return names


def test_every_ui_attribute_used_by_the_module_exists_in_the_ui_file():
    objectNames = {widget.get("name") for widget in _ui().iter("widget")}
    used = _dottedNames(MODULE_FILE, "self.ui")
    assert used, "the module uses no self.ui names?"
    assert sorted(used - objectNames) == []


def test_every_slicer_util_function_used_exists():
    used = _dottedNames(MODULE_FILE, "slicer.util").union(
        *(_dottedNames(f, "slicer.util") for f in SLICER_LIB_FILES))
    assert sorted(name for name in used if not hasattr(slicer.util, name)) == []


def _mrmlClassesNamed(path):
    """slicer.vtk* attributes, ``from slicer import vtk*`` and class names given to AddNewNodeByClass."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {name for name in _dottedNames(path, "slicer") if name.startswith("vtk")}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "slicer":
            names |= {alias.name for alias in node.names if alias.name.startswith("vtk")}
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "AddNewNodeByClass" and node.args and isinstance(node.args[0], ast.Constant)):
            names.add(node.args[0].value)
    return names


def test_every_slicer_vtk_class_used_exists():
    used = _mrmlClassesNamed(MODULE_FILE).union(*(_mrmlClassesNamed(f) for f in SLICER_LIB_FILES))
    assert {"vtkMRMLTableNode", "vtkMRMLSegmentationNode", "vtkSlicerSegmentationsModuleLogic"} <= used
    assert sorted(name for name in used if not hasattr(slicer, name)) == []


def test_ui_widget_classes_are_known_and_qmrml_classes_used_are_declared():
    root = _ui()
    declared = {custom.findtext("class") for custom in root.iter("customwidget")}
    classes = {widget.get("class") for widget in root.iter("widget")}
    assert sorted(classes - QT_WIDGETS - SLICER_WIDGETS) == []
    assert sorted((classes & SLICER_WIDGETS) - declared) == []
    usedInCode = set(re.findall(r"\b(qMRML\w+)", MODULE_FILE.read_text(encoding="utf-8")))
    assert sorted(usedInCode - SLICER_WIDGETS) == []


def test_every_bound_widget_names_a_parameter_node_field(module_file):
    fields = set(module_file.LVIPredictorParameterNode.__annotations__)
    bound = {prop.findtext("string") for prop in _ui().iter("property") if prop.get("name") == "SlicerParameterName"}
    assert bound and sorted(bound - fields) == []


def test_choice_combo_boxes_offer_exactly_the_parameter_choices(module_file):
    root = _ui()
    items = {widget.get("name"): [item.findtext("property/string") for item in widget.findall("item")]
             for widget in root.iter("widget") if widget.get("class") == "QComboBox"}
    assert items["architectureComboBox"] == list(module_file.ARCHITECTURES)
    assert items["deviceComboBox"] == ["auto", "cpu", "cuda"]
