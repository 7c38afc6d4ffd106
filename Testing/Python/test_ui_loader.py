"""The panel's .ui file through a real Qt loader (PySide6's QUiLoader, offscreen); see ui_loader.py.

PySide6-Essentials is in the ``test`` extra; these tests are skipped only where it cannot be
imported (the skip says so).
"""

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6.QtUiTools", reason="PySide6 (test extra PySide6-Essentials) cannot be imported here, "
                                                "so the .ui file cannot be loaded by Qt's loader")


def _qtStarts():
    # Qt aborts the whole process when its platform plugin cannot start (missing system
    # libraries), so try that once in a child process instead of in the test run.
    child = subprocess.run([sys.executable, "-c", "from PySide6 import QtWidgets; QtWidgets.QApplication([])"],
                           capture_output=True, text=True, timeout=120)
    return child.returncode == 0, (child.stderr or child.stdout).strip()[-500:]


_STARTS, _WHY = _qtStarts()
if not _STARTS:
    pytest.skip("PySide6 is installed but Qt's offscreen platform does not start here: " + _WHY,
                allow_module_level=True)

import ui_loader  # noqa: E402


def _brokenCopy(tmp_path, old, new):
    text = ui_loader.UI_FILE.read_text(encoding="utf-8")
    assert text.count(old) >= 1, old
    copy = tmp_path / "LVIPredictor.ui"
    copy.write_text(text.replace(old, new, 1), encoding="utf-8")
    return copy


def test_the_panel_loads_with_every_property_connection_and_widget_the_module_uses():
    assert ui_loader.problems() == []


def test_stand_ins_declare_exactly_what_their_headers_declare():
    from PySide6 import QtWidgets

    classes = ui_loader.standIns()
    assert set(classes) == set(ui_loader.DECLARATIONS)
    for name, cls in classes.items():
        declaration = ui_loader.DECLARATIONS[name]
        base = classes.get(declaration.base) or getattr(QtWidgets, declaration.base)
        assert issubclass(cls, base), name
        properties, signals, methods = ui_loader.ownMembers(cls)
        assert [p for p, _type in properties] == [p for p, _type in declaration.properties], name
        for (_name, typeName), (_declared, cppType) in zip(properties, declaration.properties):
            if cppType in ("bool", "int", "QString", "QStringList"):
                assert typeName == cppType, (name, _name)
        assert sorted(signals) == sorted(ui_loader.normalized(s) for s in declaration.signals), name
        declaredSlots = {ui_loader.normalized(s) for s in declaration.slots}
        assert set(methods) <= declaredSlots, name
        propertyNames = {p for p, _type in declaration.properties}
        for slot in declaredSlots:
            if slot.split("(")[0] in propertyNames:
                continue  # e.g. qMRMLNodeComboBox's currentNodeId(): reached as the property of that name
            assert cls.staticMetaObject.indexOfMethod(slot) >= 0, (name, slot)


def test_the_module_uses_checked_include_the_root_the_editor_and_the_connected_signals():
    uses = ui_loader._moduleUses(ui_loader.MODULE_FILE)
    assert (None, "setMRMLScene") in {(name, member) for name, member, _signal, _line in uses}
    assert {"segmentEditorWidget", "modelCardPathLineEdit", "predictButton", "progressBar"} <= {u[0] for u in uses}
    assert {"currentPathChanged(QString)", "clicked(bool)"} <= {u[2] for u in uses if u[2]}


def test_a_misspelled_property_fails_the_check(tmp_path):
    copy = _brokenCopy(tmp_path, '<property name="noneEnabled">', '<property name="noneEnabeld">')
    assert ui_loader.problems(copy) == [
        "t2VolumeSelector (qMRMLNodeComboBox): property 'noneEnabeld' is not declared by qMRMLNodeComboBox "
        "(Qt made it a dynamic property)"]


def test_a_property_value_of_the_wrong_type_fails_the_check(tmp_path):
    copy = _brokenCopy(tmp_path, "<number>10</number>", "<string>ten</string>")
    assert ui_loader.problems(copy) == [
        "segmentEditorWidget (qMRMLSegmentEditorWidget): property 'maximumNumberOfUndoStates' reads 0, "
        "the .ui file sets 'ten'"]


def test_a_connection_to_a_missing_slot_fails_the_check(tmp_path):
    copy = _brokenCopy(tmp_path, "<receiver>segmentEditorWidget</receiver>\n   <slot>setMRMLScene(vtkMRMLScene*)",
                       "<receiver>segmentEditorWidget</receiver>\n   <slot>setMRMLScene(vtkMRMLNode*)")
    found = ui_loader.problems(copy)
    assert ("connection LVIPredictor.mrmlSceneChanged(vtkMRMLScene*) -> segmentEditorWidget.setMRMLScene(vtkMRMLNode*): "
            "qMRMLSegmentEditorWidget has no slot setMRMLScene(vtkMRMLNode*)") in found
    assert any("Qt warned while loading" in problem for problem in found)


def test_a_widget_of_a_class_the_module_cannot_use_fails_the_check(tmp_path):
    copy = _brokenCopy(tmp_path, 'class="QPushButton" name="predictButton"', 'class="QLabel" name="predictButton"')
    assert [problem.split(": ", 1)[1] for problem in ui_loader.problems(copy)] == [
        "self.ui.predictButton (QLabel) has no signal clicked(bool)"]


def _pngSize(path):
    header = Path(path).read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", header[16:24])


def test_the_screenshot_is_the_ui_rendered_by_this_script(tmp_path):
    rendered = tmp_path / "panel.png"
    width, height = ui_loader.render(rendered, width=440)
    assert _pngSize(rendered) == (width, height) and width == 440 and height > 500
    committed = _pngSize(ui_loader.SCREENSHOT)
    assert committed[0] == 440  # re-render with: python Testing/Python/ui_loader.py --screenshot <that path>
