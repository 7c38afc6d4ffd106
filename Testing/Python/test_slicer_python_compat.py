"""The core and the module also run in Slicer's own Python (3.9 in Slicer 5.8): no newer syntax."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SLICER_SIDE = sorted((REPO / "LVIPredictor").rglob("*.py"))


@pytest.mark.parametrize("path", SLICER_SIDE, ids=lambda p: str(p.relative_to(REPO)))
def test_file_parses_as_python_3_9(path):
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))


@pytest.mark.parametrize("path", SLICER_SIDE, ids=lambda p: str(p.relative_to(REPO)))
def test_annotations_use_no_pep604_unions(path):
    # `X | None` parses under 3.9 but fails when the annotation is evaluated (dataclasses do).
    tree = ast.parse(path.read_text())
    annotations = [n.annotation for n in ast.walk(tree) if isinstance(n, (ast.arg, ast.AnnAssign)) and n.annotation]
    annotations += [n.returns for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and n.returns]
    unions = [ast.unparse(a) for a in annotations
              if any(isinstance(x, ast.BinOp) and isinstance(x.op, ast.BitOr) for x in ast.walk(a))]
    assert not unions, "PEP 604 unions need Python 3.10: {}".format(unions)


def test_the_core_never_imports_slicer_qt_or_training():
    offenders = []
    # Every file of the core, in every subpackage (the MRML adapter lives in LVIPredictorSlicerLib).
    for path in sorted((REPO / "LVIPredictor" / "LVIPredictorLib").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += ["{}: {}".format(path.relative_to(REPO), n) for n in names
                          if n.split(".")[0] in ("slicer", "qt", "ctk", "vtk", "lvi_training")]
    assert not offenders
