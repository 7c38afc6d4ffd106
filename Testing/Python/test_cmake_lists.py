"""The extension build lists every file it must ship (a file left out is silently missing in Slicer)."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO / "LVIPredictor"
RESOURCES = REPO / "Resources"


def _cmakeList(path, variable):
    text = re.sub(r"#[^\n]*", "", Path(path).read_text(encoding="utf-8"))
    match = re.search(r"set\(\s*" + variable + r"\s+(.*?)\)", text, re.S)
    assert match, "{} does not set {}".format(path, variable)
    return [item.replace("${MODULE_NAME}", "LVIPredictor") for item in match.group(1).split()]


def _isDraftDocument(path):
    # README-*.md drafts are merged into README.md, not shipped in the extension; screenshots are
    # shown by the Extensions Index from EXTENSION_SCREENSHOTURLS, not installed with the module.
    return path.name.startswith("README") or path.relative_to(RESOURCES).parts[0] == "Screenshots"


def test_every_python_file_of_the_module_is_listed():
    listed = set(_cmakeList(MODULE_DIR / "CMakeLists.txt", "MODULE_PYTHON_SCRIPTS"))
    present = {"LVIPredictor.py"} | {p.relative_to(MODULE_DIR).as_posix()
                                     for package in ("LVIPredictorLib", "LVIPredictorSlicerLib")
                                     for p in (MODULE_DIR / package).rglob("*.py") if "__pycache__" not in p.parts}
    assert sorted(present - listed) == []
    assert sorted(listed - present) == []


def _isListed(relative, listed):
    """A file is listed by name or by an entry for a folder above it ("dir/")."""
    parents = [parent.as_posix() + "/" for parent in Path(relative).parents if parent.as_posix() != "."]
    return relative in listed or any(parent in listed for parent in parents)


def test_every_resource_file_is_listed():
    listed = set(_cmakeList(MODULE_DIR / "CMakeLists.txt", "MODULE_TOP_LEVEL_RESOURCES"))
    present = {p.relative_to(RESOURCES).as_posix() for p in RESOURCES.rglob("*")
               if p.is_file() and not _isDraftDocument(p) and "__pycache__" not in p.parts}
    assert sorted(path for path in present if not _isListed(path, listed)) == []


def test_every_listed_resource_exists():
    for entry in _cmakeList(MODULE_DIR / "CMakeLists.txt", "MODULE_TOP_LEVEL_RESOURCES"):
        target = RESOURCES / entry.rstrip("/")
        assert (target.is_dir() and any(target.iterdir())) if entry.endswith("/") else target.is_file(), entry


def test_module_is_built_as_a_scripted_module_with_generic_and_self_tests():
    text = (MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(r"slicerMacroBuildScriptedModule\((?:[^)]*)WITH_GENERIC_TESTS", text)
    assert re.search(r"slicer_add_python_unittest\(\s*SCRIPT\s+\$\{MODULE_NAME\}\.py", text)


def test_extension_metadata_depends_on_pytorch_and_adds_the_module():
    text = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    for variable in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                     "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        assert re.search(r"set\(\s*" + variable + r"\s+\"[^\"]+\"", text), variable
    assert re.search(r"set\(\s*EXTENSION_DEPENDS\s+\"?PyTorch\"?\s*\)", text)
    assert re.search(r"add_subdirectory\(\s*LVIPredictor\s*\)", text)
