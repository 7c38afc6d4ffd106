"""The lazy dependency installer: knows what is missing, and never installs headless."""

import pytest

from slicer_headless import headless_slicer, module_file  # noqa: F401


def test_requirements_of_the_extension_are_satisfied_in_the_test_environment(module_file):
    assert module_file.DependencyInstaller(headless=True).missing() == []


def test_headless_installer_refuses_to_install_and_names_what_is_missing(module_file, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# comment\nnumpy>=1.0\nlvi-no-such-package>=1.0\n", encoding="utf-8")
    installer = module_file.DependencyInstaller(headless=True, requirementsPath=requirements,
                                                confirm=lambda text: pytest.fail("asked during a headless run"))
    assert installer.missing() == ["lvi-no-such-package>=1.0"]
    with pytest.raises(RuntimeError, match="lvi-no-such-package"):
        installer.ensure()


def test_too_old_version_counts_as_missing(module_file, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy>=999.0\n", encoding="utf-8")
    assert module_file.DependencyInstaller(headless=True, requirementsPath=requirements).missing() == ["numpy>=999.0"]


def test_testing_mode_never_installs_even_when_not_headless(module_file, headless_slicer, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("lvi-no-such-package\n", encoding="utf-8")
    installer = module_file.DependencyInstaller(requirementsPath=requirements,
                                                confirm=lambda text: pytest.fail("asked during --testing"))
    with pytest.raises(RuntimeError):
        installer.ensure()
