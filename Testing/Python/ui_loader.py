"""Resources/UI/LVIPredictor.ui through a real Qt loader (PySide6's QUiLoader), outside Slicer.

Slicer's CTK and qMRML widgets do not exist outside Slicer, so each custom class of the .ui
file is registered with the loader as a stand-in that declares exactly the Q_PROPERTYs and
signals of its header, and its public slots and Q_INVOKABLE methods (static ones left out),
on the real Qt base class it derives from there (QWidget, QAbstractButton) — so inherited
properties and signals are Qt's own. Each declaration below names the header it was copied
from. Property defaults are not Slicer's: only names and types are checked, and values only
where the .ui file sets them. PySide6 is Qt 6 while Slicer 5.8 is Qt 5; every Qt property and
signal the panel uses exists in both.

``problems()`` loads the .ui file and lists what Slicer would get wrong silently (Qt's loader
turns a misspelled property into a dynamic property and only warns about a bad connection):
  - a Qt warning while loading, or a custom class without a stand-in;
  - a widget whose class differs from the .ui file, or missing;
  - a property set in the .ui file that its class does not declare (``SlicerParameterName``,
    the parameter-node binding, excepted), or that does not read back the value set;
  - a connection whose signal or slot does not exist, whose arguments do not match, or that
    the loader did not make;
  - a ``self.ui.<name>`` member (or ``connect("signal(...)")``) that LVIPredictor.py uses and the
    loaded widget does not have (for the CTK/qMRML classes only their meta-object counts, as
    in PythonQt).

``render()`` draws the panel as loaded (what the module's setup hides, hidden) into a PNG:

    .venv/bin/python Testing/Python/ui_loader.py --screenshot Resources/Screenshots/LVIPredictor-panel.png
"""

import argparse
import ast
import os
import sys
import xml.etree.ElementTree as ElementTree
from collections import namedtuple
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtCore, QtGui, QtUiTools, QtWidgets  # noqa: E402
from PySide6.QtCore import Property, Signal, Slot  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
UI_FILE = REPO / "Resources" / "UI" / "LVIPredictor.ui"
MODULE_FILE = REPO / "LVIPredictor" / "LVIPredictor.py"
SCREENSHOT = REPO / "Resources" / "Screenshots" / "LVIPredictor-panel.png"
# Dynamic property read by slicer.parameterNodeWrapper's connectGui; declared by no class.
PARAMETER_BINDING = "SlicerParameterName"
# Properties Qt Designer writes for spacers and layouts that are not Q_PROPERTYs of the item.
SPACER_PROPERTIES = {"orientation", "sizeType", "sizeHint"}
LAYOUT_PROPERTIES = {"margin", "leftMargin", "topMargin", "rightMargin", "bottomMargin", "spacing",
                     "horizontalSpacing", "verticalSpacing", "sizeConstraint", "fieldGrowthPolicy",
                     "labelAlignment", "formAlignment", "rowWrapPolicy"}

Declaration = namedtuple("Declaration", "header base properties signals slots")

# C++ type -> PySide6 type for properties. The CTK-specific enums and flags (Filters, Options,
# SizeAdjustPolicy of ctkPathLineEdit) are declared as int: the panel's .ui sets none of them.
_PROPERTY_TYPES = {
    "bool": bool, "int": int, "QString": str, "QStringList": "QStringList",
    "QFrame::Shape": QtWidgets.QFrame.Shape, "QFrame::Shadow": QtWidgets.QFrame.Shadow,
    "Qt::Alignment": QtCore.Qt.AlignmentFlag, "Qt::ToolButtonStyle": QtCore.Qt.ToolButtonStyle,
    "QComboBox::SizeAdjustPolicy": QtWidgets.QComboBox.SizeAdjustPolicy,
    "ctkPathLineEdit::Filters": int, "ctkPathLineEdit::Options": int, "ctkPathLineEdit::SizeAdjustPolicy": int,
}
_DEFAULTS = {bool: False, int: 0, str: "", "QStringList": []}

DECLARATIONS = {
    "qMRMLWidget": Declaration(
        header="Slicer/Slicer Libs/MRML/Widgets/qMRMLWidget.h @ 11ac5870631942a7709f360e555dff919f6e4a29",
        base="QWidget",
        properties=[],
        signals=["mrmlSceneChanged(vtkMRMLScene*)"],
        slots=["setMRMLScene(vtkMRMLScene*)", "mrmlScene()"],
    ),
    "qMRMLNodeComboBox": Declaration(
        header="Slicer/Slicer Libs/MRML/Widgets/qMRMLNodeComboBox.h @ 06536db4cbc56614bb74ea6938044ca66dc603e4",
        base="QWidget",
        properties=[("currentNodeID", "QString"), ("currentNodeId", "QString"), ("nodeTypes", "QStringList"),
                    ("showHidden", "bool"), ("showChildNodeTypes", "bool"), ("hideChildNodeTypes", "QStringList"),
                    ("baseName", "QString"), ("noneEnabled", "bool"), ("addEnabled", "bool"),
                    ("removeEnabled", "bool"), ("editEnabled", "bool"), ("renameEnabled", "bool"),
                    ("interactionNodeSingletonTag", "QString"), ("selectNodeUponCreation", "bool"),
                    ("noneDisplay", "QString"), ("sizeAdjustPolicy", "QComboBox::SizeAdjustPolicy")],
        signals=["currentNodeChanged(vtkMRMLNode*)", "currentNodeIDChanged(QString)", "nodeActivated(vtkMRMLNode*)",
                 "currentNodeChanged(bool)", "nodeAdded(vtkMRMLNode*)", "nodeAddedByUser(vtkMRMLNode*)",
                 "nodeAddedByUserAction(vtkMRMLNode*)", "nodeAboutToBeRemoved(vtkMRMLNode*)",
                 "currentNodeRenamed(QString)", "nodeAboutToBeEdited(vtkMRMLNode*)"],
        slots=["setMRMLScene(vtkMRMLScene*)", "setCurrentNode(vtkMRMLNode*)", "setCurrentNode(QString)",
               "setCurrentNodeID(QString)", "setCurrentNodeIndex(int)", "addNode(QString)", "addNode()",
               "removeCurrentNode()", "editCurrentNode()", "renameCurrentNode()",
               # Q_INVOKABLE
               "mrmlScene()", "addAttribute(QString,QString,QVariant)", "removeAttribute(QString,QString)",
               "setNodeTypeLabel(QString,QString)", "nodeTypeLabel(QString)", "nodeCount()", "nodeFromIndex(int)",
               "currentNode()", "currentNodeId()", "sortFilterProxyModel()", "addMenuAction(QAction*)"],
    ),
    "ctkPathLineEdit": Declaration(
        header="commontk/CTK Libs/Widgets/ctkPathLineEdit.h @ 03bf84789d8c1f5ba7aeb8f6139d07e12ab94fd1",
        base="QWidget",
        properties=[("label", "QString"), ("filters", "ctkPathLineEdit::Filters"), ("currentPath", "QString"),
                    ("options", "ctkPathLineEdit::Options"), ("settingKey", "QString"), ("showBrowseButton", "bool"),
                    ("showHistoryButton", "bool"), ("sizeAdjustPolicy", "ctkPathLineEdit::SizeAdjustPolicy"),
                    ("minimumContentsLength", "int"), ("nameFilters", "QStringList")],
        signals=["validInputChanged(bool)", "currentPathChanged(QString)"],
        slots=["setCurrentPath(QString)", "browse()", "retrieveHistory()", "addCurrentPathToHistory()"],
    ),
    "ctkCollapsibleButton": Declaration(
        header="commontk/CTK Libs/Widgets/ctkCollapsibleButton.h @ 0d0ec63a1ca05b1509926d3091ffa13ed08e903a",
        base="QAbstractButton",
        properties=[("collapsed", "bool"), ("collapsedHeight", "int"), ("contentsFrameShape", "QFrame::Shape"),
                    ("contentsFrameShadow", "QFrame::Shadow"), ("contentsLineWidth", "int"),
                    ("contentsMidLineWidth", "int"), ("buttonTextAlignment", "Qt::Alignment"),
                    ("indicatorAlignment", "Qt::Alignment")],
        signals=["contentsCollapsed(bool)"],
        slots=[],  # collapse(bool) and onToggled(bool) are protected
    ),
    # The copies of Slicer/Slicer's own header in the reference index predate the master -> source
    # volume renaming that the panel's .ui uses (Slicer >= 5.2); this one is a fork of current main.
    "qMRMLSegmentEditorWidget": Declaration(
        header="Thibault-Pelletier/Slicer (fork of Slicer/Slicer main) "
               "Modules/Loadable/Segmentations/Widgets/qMRMLSegmentEditorWidget.h @ 1201740aa6cca8af2135ea15699b6c376d81b6f0",
        base="qMRMLWidget",
        properties=[("segmentationNodeSelectorVisible", "bool"), ("sourceVolumeNodeSelectorVisible", "bool"),
                    ("maskingSectionVisible", "bool"), ("specifyGeometryButtonVisible", "bool"),
                    ("show3DButtonVisible", "bool"), ("addRemoveSegmentButtonsVisible", "bool"),
                    ("autoShowSourceVolumeNode", "bool"), ("masterVolumeNodeSelectorVisible", "bool"),
                    ("autoShowMasterVolumeNode", "bool"), ("switchToSegmentationsButtonVisible", "bool"),
                    ("undoEnabled", "bool"), ("maximumNumberOfUndoStates", "int"), ("readOnly", "bool"),
                    ("effectButtonStyle", "Qt::ToolButtonStyle"), ("effectColumnCount", "int"),
                    ("unorderedEffectsVisible", "bool"), ("defaultTerminologyEntrySettingsKey", "QString"),
                    ("defaultTerminologyEntry", "QString"), ("jumpToSelectedSegmentEnabled", "bool")],
        signals=["currentSegmentIDChanged(QString)", "sourceVolumeNodeChanged(vtkMRMLVolumeNode*)",
                 "masterVolumeNodeChanged(vtkMRMLVolumeNode*)", "segmentationNodeChanged(vtkMRMLSegmentationNode*)"],
        slots=["setMRMLScene(vtkMRMLScene*)", "setMRMLSegmentEditorNode(vtkMRMLSegmentEditorNode*)",
               "updateWidgetFromMRML()", "setSegmentationNode(vtkMRMLNode*)", "setSegmentationNodeID(QString)",
               "setSourceVolumeNode(vtkMRMLNode*)", "setSourceVolumeNodeID(QString)",
               "setMasterVolumeNode(vtkMRMLNode*)", "setMasterVolumeNodeID(QString)", "setCurrentSegmentID(QString)",
               "setActiveEffectByName(QString)", "saveStateForUndo()", "updateVolume(void*,bool&)",
               "setSegmentationNodeSelectorVisible(bool)", "setSourceVolumeNodeSelectorVisible(bool)",
               "setAutoShowSourceVolumeNode(bool)", "setMaskingSectionVisible(bool)",
               "setSpecifyGeometryButtonVisible(bool)", "setShow3DButtonVisible(bool)",
               "setAddRemoveSegmentButtonsVisible(bool)", "setSwitchToSegmentationsButtonVisible(bool)",
               "setUndoEnabled(bool)", "setMaximumNumberOfUndoStates(int)", "setReadOnly(bool)",
               "toggleSourceVolumeIntensityMaskEnabled()", "setMasterVolumeNodeSelectorVisible(bool)",
               "setAutoShowMasterVolumeNode(bool)", "toggleMasterVolumeIntensityMaskEnabled()", "undo()", "redo()",
               "installKeyboardShortcuts(QWidget*)", "uninstallKeyboardShortcuts()", "turnOffLightboxes()",
               "hideLabelLayer()", "setEffectButtonStyle(Qt::ToolButtonStyle)", "setEffectColumnCount(int)",
               "updateEffectList()", "showSourceVolumeInSliceViewers(bool,bool)",
               "showMasterVolumeInSliceViewers(bool,bool)", "rotateSliceViewsToSegmentation()",
               "setInteractionNode(vtkMRMLInteractionNode*)", "selectPreviousSegment()", "selectNextSegment()",
               "selectSegmentAtOffset(int)", "jumpSlices()", "setJumpToSelectedSegmentEnabled(bool)",
               # Q_INVOKABLE
               "mrmlSegmentEditorNode()", "segmentationNode()", "segmentationNodeID()", "sourceVolumeNode()",
               "sourceVolumeNodeID()", "masterVolumeNode()", "masterVolumeNodeID()", "currentSegmentID()",
               "activeEffect()", "setActiveEffect(qSlicerSegmentEditorAbstractEffect*)", "effectByName(QString)",
               "availableEffectNames()", "setEffectNameOrder(QStringList)", "effectNameOrder()", "effectCount()",
               "effectByIndex(int)", "setupViewObservations()", "removeViewObservations()",
               "segmentationNodeSelectorAddAttribute(QString,QString,QVariant)",
               "segmentationNodeSelectorRemoveAttribute(QString,QString)",
               "sourceVolumeNodeSelectorAddAttribute(QString,QString,QVariant)",
               "sourceVolumeNodeSelectorRemoveAttribute(QString,QString)",
               "masterVolumeNodeSelectorAddAttribute(QString,QString,QVariant)",
               "masterVolumeNodeSelectorRemoveAttribute(QString,QString)", "interactionNode()", "logic()"],
    ),
}

_ARGUMENT_TYPES = {"QString": str, "bool": bool, "int": int, "double": float}


def _parseSignature(signature):
    name, arguments = signature.rstrip(")").split("(")
    return name, [_ARGUMENT_TYPES.get(a, a) for a in arguments.split(",") if a]


def normalized(signature):
    return bytes(QtCore.QMetaObject.normalizedSignature(signature)).decode()


# --- looks: what the stand-ins draw (no properties, signals or slots of their own) -------------


class _Look:
    """Redraw hook called after every property of a stand-in is set."""

    def _update(self):
        pass


class _CollapsibleButtonLook(_Look, QtWidgets.QAbstractButton):
    """A header button with an arrow; its children are hidden while collapsed, as in CTK."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setCheckable(True)
        self.setChecked(True)
        self.toggled.connect(lambda checked: self.setProperty("collapsed", not checked))
        self._header = self.fontMetrics().height() + 12
        self.setContentsMargins(0, self._header, 0, 0)

    def _update(self):
        collapsed = bool(self.property("collapsed"))
        self.blockSignals(True)
        self.setChecked(not collapsed)
        self.blockSignals(False)
        for child in self.findChildren(QtWidgets.QWidget, options=QtCore.Qt.FindDirectChildrenOnly):
            child.setVisible(not collapsed)

    def showEvent(self, event):
        self._update()  # the loader sets "collapsed" before it adds the children
        super().showEvent(event)

    def paintEvent(self, event):
        painter = QtWidgets.QStylePainter(self)
        option = QtWidgets.QStyleOptionButton()
        option.initFrom(self)
        option.rect = QtCore.QRect(0, 0, self.width(), self._header)
        painter.drawControl(QtWidgets.QStyle.CE_PushButtonBevel, option)
        arrow = QtWidgets.QStyleOption()
        arrow.initFrom(self)
        arrow.rect = QtCore.QRect(6, (self._header - 10) // 2, 10, 10)
        painter.drawPrimitive(QtWidgets.QStyle.PE_IndicatorArrowDown if self.isChecked()
                              else QtWidgets.QStyle.PE_IndicatorArrowRight, arrow)
        painter.drawText(QtCore.QRect(22, 0, self.width() - 28, self._header),
                         int(QtCore.Qt.AlignLeft | QtCore.Qt.AlignVCenter), self.text())


def _comboBoxIn(widget, items=()):
    """A combo box that fills ``widget``'s width, in a margin-less row of its own when it has no layout."""
    combo = QtWidgets.QComboBox(widget)
    combo.addItems(list(items))
    combo.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)
    if widget.layout() is None:
        QtWidgets.QHBoxLayout(widget).setContentsMargins(0, 0, 0, 0)
        widget.layout().addWidget(combo)
    return combo


class _PathLineEditLook(_Look, QtWidgets.QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._edit = _comboBoxIn(self)
        self._edit.setEditable(True)
        browse = QtWidgets.QToolButton(self)
        browse.setText("...")
        self.layout().addWidget(browse)

    def _update(self):
        if self._edit.currentText() != self.property("currentPath"):
            self._edit.setEditText(self.property("currentPath") or "")


class _NodeComboBoxLook(_Look, QtWidgets.QWidget):
    """Shows what an empty scene gives: "None" when noneEnabled."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._combo = _comboBoxIn(self)

    def _update(self):
        self._combo.clear()
        if self.property("noneEnabled"):
            self._combo.addItem(self.property("noneDisplay") or "None")


class _MRMLWidgetLook(_Look, QtWidgets.QWidget):
    pass


def _buildStandIn(name, base, declaration):
    namespace = {"__qualname__": name}
    for propertyName, cppType in declaration.properties:
        pythonType = _PROPERTY_TYPES[cppType]

        def getter(self, _name=propertyName, _default=_DEFAULTS.get(pythonType)):
            return self.__dict__.setdefault("_values", {}).get(_name, _default)

        def setter(self, value, _name=propertyName):
            self.__dict__.setdefault("_values", {})[_name] = value
            self._update()

        namespace[propertyName] = Property(pythonType, getter, setter)
    signals = {}
    for signature in declaration.signals:
        signalName, arguments = _parseSignature(signature)
        signals.setdefault(signalName, []).append(tuple(arguments))
    for signalName, overloads in signals.items():
        namespace[signalName] = Signal(*overloads) if len(overloads) > 1 else Signal(*overloads[0])
    slots = {}
    for signature in declaration.slots:
        slotName, arguments = _parseSignature(signature)
        if slotName not in namespace:  # a Q_INVOKABLE getter named like its property: one Python name
            slots.setdefault(slotName, []).append(arguments)
    for slotName, overloads in slots.items():
        def slot(self, *arguments):
            return None  # stand-ins do nothing; only the declaration is checked

        for arguments in overloads:
            slot = Slot(*arguments, name=slotName)(slot)
        namespace[slotName] = slot
    return type(name, (base,), namespace)


def _standIns():
    classes = {}
    classes["qMRMLWidget"] = _buildStandIn("qMRMLWidget", _MRMLWidgetLook, DECLARATIONS["qMRMLWidget"])
    classes["qMRMLNodeComboBox"] = _buildStandIn("qMRMLNodeComboBox", _NodeComboBoxLook,
                                                 DECLARATIONS["qMRMLNodeComboBox"])
    classes["ctkPathLineEdit"] = _buildStandIn("ctkPathLineEdit", _PathLineEditLook, DECLARATIONS["ctkPathLineEdit"])
    classes["ctkCollapsibleButton"] = _buildStandIn("ctkCollapsibleButton", _CollapsibleButtonLook,
                                                    DECLARATIONS["ctkCollapsibleButton"])

    class _SegmentEditorLook(classes["qMRMLWidget"]):
        """Selectors as declared; the segment list and the effects are a labelled placeholder."""

        def __init__(self, parent=None):
            super().__init__(parent)
            layout = QtWidgets.QFormLayout(self)
            layout.setContentsMargins(0, 0, 0, 0)
            self._rows = {}
            for key, label in (("segmentationNodeSelectorVisible", "Segmentation:"),
                               ("sourceVolumeNodeSelectorVisible", "Source volume:")):
                combo = _comboBoxIn(self, ["None"])
                rowLabel = QtWidgets.QLabel(label, self)
                layout.addRow(rowLabel, combo)
                self._rows[key] = (rowLabel, combo)
            placeholder = QtWidgets.QLabel(
                "Segment list and editing effects (Paint, Draw, Threshold, Islands, …): Slicer's Segment Editor, "
                "drawn only inside Slicer", self)
            placeholder.setWordWrap(True)
            placeholder.setAlignment(QtCore.Qt.AlignCenter)
            placeholder.setFrameShape(QtWidgets.QFrame.StyledPanel)
            placeholder.setMinimumHeight(110)
            placeholder.setEnabled(False)
            layout.addRow(placeholder)

        def _update(self):
            for key, (rowLabel, combo) in self._rows.items():
                rowLabel.setVisible(bool(self.property(key)))
                combo.setVisible(bool(self.property(key)))

    classes["qMRMLSegmentEditorWidget"] = _buildStandIn("qMRMLSegmentEditorWidget", _SegmentEditorLook,
                                                        DECLARATIONS["qMRMLSegmentEditorWidget"])
    return classes


def application():
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


_STAND_INS = None


def standIns():
    """{class name: stand-in class}, built once (PySide6 classes cannot be redefined cheaply)."""
    global _STAND_INS
    application()
    if _STAND_INS is None:
        _STAND_INS = _standIns()
    return _STAND_INS


def ownMembers(cls):
    """(properties, signals, other methods) a class declares itself, as Qt's meta-object sees them."""
    meta = cls.staticMetaObject
    properties = [(meta.property(i).name(), meta.property(i).typeName())
                  for i in range(meta.propertyOffset(), meta.propertyCount())]
    signals, methods = [], []
    for i in range(meta.methodOffset(), meta.methodCount()):
        method = meta.method(i)
        signature = bytes(method.methodSignature()).decode()
        (signals if method.methodType() == QtCore.QMetaMethod.Signal else methods).append(signature)
    return properties, signals, methods


# --- loading and checking ----------------------------------------------------------------------


def load(uiPath):
    """(root widget, Qt messages printed while loading, loader error string)."""
    application()
    loader = QtUiTools.QUiLoader()
    for cls in standIns().values():
        loader.registerCustomWidget(cls)
    messages = []

    def record(kind, context, text):
        messages.append(text)

    previous = QtCore.qInstallMessageHandler(record)
    try:
        handle = QtCore.QFile(str(uiPath))
        handle.open(QtCore.QIODevice.ReadOnly)
        root = loader.load(handle)
        handle.close()
    finally:
        QtCore.qInstallMessageHandler(previous)
    return root, messages, loader.errorString()


def _xmlValue(propertyElement):
    value = list(propertyElement)[0]
    if value.tag == "bool":
        return True, value.text == "true"
    if value.tag == "number":
        return True, int(value.text)
    if value.tag == "string":
        return True, value.text or ""
    if value.tag == "stringlist":
        return True, [item.text or "" for item in value.findall("string")]
    return False, None  # enum, set, size, ...: declared is all that is checked


def _find(root, name):
    if root.objectName() == name:
        return root
    return root.findChild(QtCore.QObject, name)


def _isStandIn(obj):
    return type(obj).__name__ in DECLARATIONS


def _hasMember(obj, member):
    meta = obj.metaObject()
    if meta.indexOfProperty(member) >= 0:
        return True
    if any(bytes(meta.method(i).name()).decode() == member for i in range(meta.methodCount())):
        return True
    # PythonQt also wraps the plain C++ methods of Qt's own classes, not those of CTK/qMRML ones.
    return not _isStandIn(obj) and hasattr(obj, member)


def _widgetElements(tree):
    return list(tree.getroot().iter("widget"))


def _moduleUses(modulePath):
    """[(objectName or None for the root, member or None, signal signature or None, line)] of the module file."""
    tree = ast.parse(Path(modulePath).read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    rootVariables = {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                     and isinstance(node.value, ast.Call) and ast.unparse(node.value.func) == "slicer.util.loadUI"
                     for target in node.targets if isinstance(target, ast.Name)}
    uses = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        if ast.unparse(node.value) == "self.ui":
            name, member = node.attr, None
            outer = parents.get(node)
            if isinstance(outer, ast.Attribute) and outer.value is node:
                member = outer.attr
        elif isinstance(node.value, ast.Name) and node.value.id in rootVariables:
            name, member, outer = None, node.attr, node
        else:
            continue
        signal = None
        call = parents.get(outer) if member else None
        if member == "connect" and isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant):
            signal = call.args[0].value
        uses.append((name, member, signal, node.lineno))
    return uses


def problems(uiPath=UI_FILE, modulePath=MODULE_FILE):
    """Every defect found in ``uiPath`` (and in how ``modulePath`` uses it); [] when there is none."""
    found = []
    classes = standIns()
    tree = ElementTree.parse(str(uiPath))
    for custom in tree.getroot().iter("customwidget"):
        className, extends = custom.findtext("class"), custom.findtext("extends")
        if className not in classes:
            found.append("custom widget {} has no stand-in declared from its header".format(className))
            continue
        base = classes.get(extends) or getattr(QtWidgets, extends, None)
        if base is None or not issubclass(classes[className], base):
            found.append("custom widget {} does not derive from {} as the .ui file says".format(className, extends))

    root, messages, error = load(uiPath)
    if root is None:
        return found + ["the loader could not load {}: {}".format(uiPath, error or "; ".join(messages))]
    found += ["Qt warned while loading: {}".format(message) for message in messages]

    for element in _widgetElements(tree):
        name, className = element.get("name"), element.get("class")
        obj = _find(root, name)
        if obj is None:
            found.append("{} ({}) is not in the loaded panel".format(name, className))
            continue
        if obj.metaObject().className() != className:
            found.append("{} was loaded as {}, not {}".format(name, obj.metaObject().className(), className))
        for prop in element.findall("property"):
            propertyName = prop.get("name")
            if propertyName == PARAMETER_BINDING:
                continue
            if obj.metaObject().indexOfProperty(propertyName) < 0:
                found.append("{} ({}): property '{}' is not declared by {} (Qt made it a dynamic property)".format(
                    name, className, propertyName, className))
                continue
            comparable, expected = _xmlValue(prop)
            if comparable and obj.property(propertyName) != expected:
                found.append("{} ({}): property '{}' reads {!r}, the .ui file sets {!r}".format(
                    name, className, propertyName, obj.property(propertyName), expected))
    for spacer in tree.getroot().iter("spacer"):
        for prop in spacer.findall("property"):
            if prop.get("name") not in SPACER_PROPERTIES:
                found.append("spacer {}: '{}' is not a spacer property".format(spacer.get("name"), prop.get("name")))
    for layout in tree.getroot().iter("layout"):
        meta = getattr(QtWidgets, layout.get("class")).staticMetaObject
        for prop in layout.findall("property"):
            if prop.get("name") not in LAYOUT_PROPERTIES and meta.indexOfProperty(prop.get("name")) < 0:
                found.append("{}: '{}' is not a layout property".format(layout.get("class"), prop.get("name")))

    made = {}
    for connection in tree.getroot().iter("connection"):
        sender, receiver = connection.findtext("sender"), connection.findtext("receiver")
        signal, slot = normalized(connection.findtext("signal")), normalized(connection.findtext("slot"))
        what = "connection {}.{} -> {}.{}".format(sender, signal, receiver, slot)
        senderObject, receiverObject = _find(root, sender), _find(root, receiver)
        if senderObject is None or receiverObject is None:
            found.append("{}: {} not found".format(what, sender if senderObject is None else receiver))
            continue
        if senderObject.metaObject().indexOfSignal(signal) < 0:
            found.append("{}: {} has no signal {}".format(what, senderObject.metaObject().className(), signal))
            continue
        receiverMeta = receiverObject.metaObject()
        if receiverMeta.indexOfSlot(slot) < 0 and receiverMeta.indexOfSignal(slot) < 0:
            found.append("{}: {} has no slot {}".format(what, receiverMeta.className(), slot))
            continue
        if not QtCore.QMetaObject.checkConnectArgs(signal, slot):
            found.append("{}: the arguments do not match".format(what))
            continue
        made[(sender, signal)] = made.get((sender, signal), 0) + 1
        if senderObject.receivers(QtCore.SIGNAL(signal)) < made[(sender, signal)]:
            found.append("{}: the loader did not make it".format(what))

    for name, member, signal, line in _moduleUses(modulePath):
        obj = root if name is None else _find(root, name)
        where = "{}:{}".format(Path(modulePath).name, line)
        label = "the root widget" if name is None else "self.ui." + name
        if obj is None:
            found.append("{}: {} is not in the .ui file".format(where, label))
            continue
        className = obj.metaObject().className()
        if signal is not None:
            if obj.metaObject().indexOfSignal(normalized(signal)) < 0:
                found.append("{}: {} ({}) has no signal {}".format(where, label, className, signal))
        elif member is not None and not _hasMember(obj, member):
            found.append("{}: {} ({}) has no property or method '{}'".format(where, label, className, member))
    root.deleteLater()
    return sorted(set(found))


# --- rendering ---------------------------------------------------------------------------------

# What LVIPredictorWidget.setup() hides before the panel is first shown.
HIDDEN_AT_SETUP = ("progressBar", "cancelButton")


def render(pngPath=SCREENSHOT, uiPath=UI_FILE, width=440):
    """Draw the panel as loaded into ``pngPath``; returns the image size."""
    app = application()
    app.setFont(QtGui.QFont("DejaVu Sans", 9))
    root, messages, error = load(uiPath)
    if root is None:
        raise RuntimeError("cannot load {}: {}".format(uiPath, error or "; ".join(messages)))
    for name in HIDDEN_AT_SETUP:
        _find(root, name).hide()
    root.setFixedWidth(width)
    # The offscreen platform says on every show that it has no window manager to size windows.
    previous = QtCore.qInstallMessageHandler(lambda kind, context, text: None)
    try:
        root.show()
        for _pass in range(3):  # collapsible sections settle their children on show
            app.processEvents()
            root.adjustSize()
    finally:
        QtCore.qInstallMessageHandler(previous)
    image = root.grab()
    Path(pngPath).parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(pngPath), "PNG"):
        raise RuntimeError("could not write " + str(pngPath))
    size = (image.width(), image.height())
    root.close()
    root.deleteLater()
    return size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--screenshot", type=Path, help="write the rendered panel to this PNG")
    arguments = parser.parse_args(argv)
    found = problems()
    for problem in found:
        print("problem:", problem)
    if arguments.screenshot:
        width, height = render(arguments.screenshot)
        print("wrote {} ({}x{})".format(arguments.screenshot, width, height))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
