"""Where the module's resources are: Resources/ beside the module when installed, one level up in
a source checkout (so "Add module paths" on a checkout works without building)."""

from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parents[1]


def resourcesDir() -> Path:
    """Resources/ beside the module when installed, one level up in the source tree
    (so "Add module paths" on a checkout works without building)."""
    for candidate in (MODULE_DIR / "Resources", MODULE_DIR.parent / "Resources"):
        if (candidate / "UI").is_dir():
            return candidate
    return MODULE_DIR / "Resources"
