"""LVIPredictor.json and the top-level CMakeLists.txt against the Slicer Extensions Index's checks.

What the index's CI runs on a submitted description file (Slicer/ExtensionsIndex
scripts/check_description_files.py @ 08798e56cd5865fda916b29d869115817f4c14d8), here without the
network: the JSON schema (Slicer/Slicer Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json,
restated below as its rules), the category, the repository name, the scm_url scheme, the CMake
project name and the icon/screenshot URL lines (matched with the checker's own patterns), the
license file, and build dependencies matching EXTENSION_DEPENDS. The checker's downloads (clone,
icon and screenshot URLs) can only pass once the repository is public; instead each URL is checked
to point at a file of this repository at scm_revision. The repository address is a placeholder,
named as such in one place: the README's "Installing" section.
"""

import json
import re
import struct
import urllib.parse
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DESCRIPTION = REPO / "LVIPredictor.json"
CMAKE = REPO / "CMakeLists.txt"
README = REPO / "README.md"

SCHEMA_URL = "https://raw.githubusercontent.com/Slicer/Slicer/main/Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json#"
# Schema v1.0.1: required keys, every allowed key with its JSON type, and the enumerations.
SCHEMA_REQUIRED = {"$schema", "category", "scm_url"}
SCHEMA_TYPES = {"$schema": str, "category": str, "scm_url": str, "scm_revision": str, "scm_type": str,
                "build_dependencies": list, "build_subdirectory": str, "enabled": bool, "tier": int}
SCHEMA_ENUMS = {"scm_type": {"git", "local"}, "tier": {1, 3, 5}}
# An excerpt of the checker's ACCEPTED_EXTENSION_CATEGORIES.
INDEX_CATEGORIES = {"Quantification", "Segmentation", "Informatics", "Analysis", "Utilities", "Examples"}
# The checker's LICENSE file names.
LICENSE_NAMES = ("LICENSE", "LICENCE", "License.txt", "license.txt", "LICENSE.txt", "COPYING", "COPYING.txt")


@pytest.fixture(scope="module")
def description():
    return json.loads(DESCRIPTION.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cmake():
    return CMAKE.read_text(encoding="utf-8")


def _cmakeValue(cmake, variable):
    match = re.search(r'set\(\s*' + variable + r'\s+"([^"]*)"\s*\)', cmake)
    assert match, variable
    return match.group(1)


def _repositoryPath(description):
    """owner/name of the repository that scm_url names."""
    return urllib.parse.urlsplit(description["scm_url"]).path.strip("/").rsplit(".git", 1)[0]


def test_description_file_follows_schema_v1_0_1(description):
    assert description["$schema"] == SCHEMA_URL
    assert SCHEMA_REQUIRED <= set(description)
    assert set(description) <= set(SCHEMA_TYPES), "additionalProperties is false in the schema"
    for key, value in description.items():
        # bool is an int in Python; the schema's "integer" does not accept true/false.
        assert isinstance(value, SCHEMA_TYPES[key]) and not (SCHEMA_TYPES[key] is int and isinstance(value, bool)), key
        if key in SCHEMA_ENUMS:
            assert value in SCHEMA_ENUMS[key], key
    assert all(isinstance(item, str) for item in description.get("build_dependencies", []))


def test_index_checks_on_the_description_file(description):
    assert description["category"] in INDEX_CATEGORIES
    url = description["scm_url"]
    assert "://" in url and urllib.parse.urlsplit(url).scheme in ("git", "https")
    repositoryName = _repositoryPath(description).split("/")[-1]
    assert "slicer" in repositoryName.lower(), "the index asks for a Slicer<Name> repository"
    assert DESCRIPTION.stem == "LVIPredictor"


def test_cmake_metadata_passes_the_index_checks_and_agrees_with_the_description(description, cmake):
    projects = re.findall(r'project\s*\(\s*([^\s\)\n\r]+)', cmake, re.IGNORECASE | re.MULTILINE)
    assert projects and projects[0].strip("\"'") == DESCRIPTION.stem
    icons = re.findall(r'set\s*\(EXTENSION_ICONURL\s*"([^"]+)"[ ]*\)', cmake, re.IGNORECASE | re.MULTILINE)
    screenshots = re.findall(r'set\s*\(EXTENSION_SCREENSHOTURLS\s*"([^"]+)"\)', cmake, re.IGNORECASE | re.MULTILINE)
    assert icons and screenshots and all(u.startswith("http") for u in icons[0].split() + screenshots[0].split())
    assert _cmakeValue(cmake, "EXTENSION_CATEGORY") == description["category"]
    depends = _cmakeValue(cmake, "EXTENSION_DEPENDS").split()
    assert depends == description.get("build_dependencies", []) == ["PyTorch"]
    summary = _cmakeValue(cmake, "EXTENSION_DESCRIPTION")
    assert 1 <= len(re.findall(r"[.!?](?:\s|$)", summary)) <= 2, "the index asks for a 1-2 sentence description"


def _pngSize(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", header[16:24])


def test_icon_and_screenshot_urls_point_at_png_files_of_this_repository(description, cmake):
    raw = "https://raw.githubusercontent.com/{}/{}/".format(_repositoryPath(description), description["scm_revision"])
    urls = {"icon": _cmakeValue(cmake, "EXTENSION_ICONURL").split(),
            "screenshot": _cmakeValue(cmake, "EXTENSION_SCREENSHOTURLS").split()}
    assert len(urls["icon"]) == 1 and urls["screenshot"]
    for kind, addresses in urls.items():
        for address in addresses:
            assert address.startswith(raw), address
            path = REPO / address[len(raw):]
            width, height = _pngSize(path)
            if kind == "icon":
                assert (width, height) == (128, 128)  # the Extensions Manager shows 128x128 icons
    homepage = urllib.parse.urlsplit(_cmakeValue(cmake, "EXTENSION_HOMEPAGE"))
    assert homepage.netloc == "github.com" and homepage.path.strip("/") == _repositoryPath(description)


def test_license_file_is_apache_2_like_the_package(description):
    present = [name for name in LICENSE_NAMES if (REPO / name).is_file()]
    assert present == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert re.search(r'^license\s*=\s*"Apache-2.0"', (REPO / "pyproject.toml").read_text(), re.M)


def test_the_placeholder_repository_is_named_as_such_in_the_readme(description, cmake):
    address = "https://github.com/" + _repositoryPath(description)
    installing = README.read_text(encoding="utf-8").split("### Installing", 1)[1].split("\n### ", 1)[0]
    line = next((line for line in installing.splitlines() if address in line), "")
    assert "placeholder" in line.lower(), "README's Installing section must name {} as a placeholder".format(address)
    assert description["scm_url"].startswith(address)
