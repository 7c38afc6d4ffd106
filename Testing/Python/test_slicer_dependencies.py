"""The lazy dependency installer: what it finds missing, what it installs through which entry point,
and that it never installs headless, under --testing, or without the user's confirmation.

The installer under test is the real DependencyInstaller. Installed distributions are real
``*.dist-info`` metadata in a temporary folder (its ``searchPath``), read by importlib.metadata.
The only stand-ins are the two Slicer entry points that would download packages,
PyTorchUtils' ``installTorch`` and Slicer's ``pip_ensure`` (or ``slicer.util.pip_install`` before
Slicer 5.11): they record each call and, like a successful install, write the installed
distribution's metadata.
"""

import sys
import types

import pytest
import slicer

from slicer_headless import headless_slicer, module_file  # noqa: F401

TORCH_REQUIREMENT = "torch>=2.1"


def _writeDistribution(site, name, version):
    """Metadata of an installed distribution; like pip, an install replaces an older one."""
    folderName = name.replace("-", "_")
    for old in site.glob("{}-*.dist-info".format(folderName)):
        (old / "METADATA").unlink()
        old.rmdir()
    info = site / "{}-{}.dist-info".format(folderName, version)
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: {}\nVersion: {}\n".format(name, version),
                                   encoding="utf-8")


def _lowestVersionAllowed(specifier):
    """The version a package index would offer for ">=X" requirements: X."""
    bounds = [spec.version for spec in specifier if spec.operator in (">=", "==")]
    assert bounds, "the stand-in installs only >= / == requirements, got {}".format(specifier)
    return bounds[0]


class SlicerInstallEntryPoints:
    """Recording stand-ins of ``PyTorchUtils.PyTorchUtilsLogic.installTorch`` and of
    ``slicer.packaging.pip_ensure`` / ``slicer.util.pip_install``, with the signatures of the real
    ones (SlicerPyTorch PyTorchUtils/PyTorchUtils.py; Slicer Base/Python/slicer/packaging.py and
    util.py), so a wrong keyword fails here as it would in Slicer."""

    def __init__(self, site):
        self.site = site
        self.calls = []
        self.torchInstalls = True  # False: PyTorch Utils installs nothing and returns None
        self.pipInstalls = True

    def installTorch(self, askConfirmation=False, forceComputationBackend=None, torchVersionRequirement=None):
        from packaging.specifiers import SpecifierSet

        self.calls.append(("installTorch", {"askConfirmation": askConfirmation,
                                            "forceComputationBackend": forceComputationBackend,
                                            "torchVersionRequirement": torchVersionRequirement}))
        if not self.torchInstalls:
            return None
        _writeDistribution(self.site, "torch", _lowestVersionAllowed(SpecifierSet(torchVersionRequirement)))
        return types.ModuleType("torch")

    def pip_ensure(self, requirements, constraints=None, skip_packages=None, prompt_install=True,
                   prompt_restart=True, requester=None, skip_in_testing=True, show_progress=True):
        self.calls.append(("pip_ensure", {"requirements": [str(r) for r in requirements],
                                          "prompt_install": prompt_install, "requester": requester}))
        if self.pipInstalls:
            for requirement in requirements:
                _writeDistribution(self.site, requirement.name, _lowestVersionAllowed(requirement.specifier))

    def pip_install(self, requirements, **kwargs):
        from packaging.requirements import Requirement

        self.calls.append(("pip_install", {"requirements": requirements}))
        if self.pipInstalls:
            for text in requirements:
                requirement = Requirement(text)
                _writeDistribution(self.site, requirement.name, _lowestVersionAllowed(requirement.specifier))


class Dialogs:
    """The two questions the installer asks: scripted answers, recorded texts."""

    def __init__(self, answer=True):
        self.answer = answer
        self.asked = []
        self.restartOffers = []

    def confirm(self, text):
        self.asked.append(text)
        return self.answer

    def offerRestart(self, text):
        self.restartOffers.append(text)


@pytest.fixture
def site(tmp_path):
    folder = tmp_path / "site-packages"
    folder.mkdir()
    return folder


@pytest.fixture
def entryPoints(site):
    return SlicerInstallEntryPoints(site)


@pytest.fixture
def slicerWith(monkeypatch, entryPoints):
    """``slicerWith(pytorchExtension=True, pipEnsure=True)``: a non-testing Slicer with or without
    the PyTorch extension and with or without ``slicer.packaging.pip_ensure``."""

    def install(pytorchExtension=True, pipEnsure=True):
        monkeypatch.delattr(slicer, "app", raising=False)  # no --testing
        modules = types.SimpleNamespace()
        if pytorchExtension:
            modules.pytorchutils = object()
            pytorchUtils = types.ModuleType("PyTorchUtils")
            pytorchUtils.PyTorchUtilsLogic = lambda: entryPoints
            monkeypatch.setitem(sys.modules, "PyTorchUtils", pytorchUtils)
        else:
            monkeypatch.delitem(sys.modules, "PyTorchUtils", raising=False)
        monkeypatch.setattr(slicer, "modules", modules, raising=False)
        if pipEnsure:
            packagingModule = types.ModuleType("slicer.packaging")
            packagingModule.pip_ensure = entryPoints.pip_ensure
            monkeypatch.setitem(sys.modules, "slicer.packaging", packagingModule)
        else:
            monkeypatch.setitem(sys.modules, "slicer.packaging", None)  # import fails, as before Slicer 5.11
            monkeypatch.setitem(sys.modules, "slicer.pydeps", None)
        monkeypatch.setattr(slicer.util, "pip_install", entryPoints.pip_install)
        return entryPoints

    return install


def _installer(module_file, tmp_path, site, dialogs, lines, headless=False):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return module_file.DependencyInstaller(headless=headless, requirementsPath=requirements, confirm=dialogs.confirm,
                                           offerRestart=dialogs.offerRestart, searchPath=[str(site)])


# --- what counts as missing --------------------------------------------------------------------


def test_requirements_of_the_extension_are_satisfied_in_the_test_environment(module_file):
    assert module_file.DependencyInstaller(headless=True).missing() == []


def test_headless_installer_refuses_to_install_and_names_what_is_missing(module_file, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# comment\nnumpy>=1.0\nlvi-no-such-package>=1.0\n", encoding="utf-8")
    installer = module_file.DependencyInstaller(headless=True, requirementsPath=requirements,
                                                confirm=lambda text: pytest.fail("asked during a headless run"))
    assert installer.missing() == ["lvi-no-such-package>=1.0"]
    with pytest.raises(module_file.DependencyError, match="lvi-no-such-package"):
        installer.ensure()


def test_too_old_version_counts_as_missing(module_file, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy>=999.0\n", encoding="utf-8")
    assert module_file.DependencyInstaller(headless=True, requirementsPath=requirements).missing() == ["numpy>=999.0"]


def test_every_specifier_and_marker_is_honoured_not_only_lower_bounds(module_file, tmp_path, site):
    for name, version in (("alpha", "1.4.2"), ("beta", "2.0"), ("gamma", "0.9"), ("delta-pkg", "3.1+local")):
        _writeDistribution(site, name, version)
    lines = ["alpha>=1.4,<2", "beta!=2.0", "gamma~=1.0", "Delta_Pkg>=3.1", "alpha==1.4.2  # exact pin",
             "-r other-requirements.txt", "absent; python_version < '3.0'", "beta<2 ; python_version >= '3.0'"]
    installer = _installer(module_file, tmp_path, site, Dialogs(), lines, headless=True)
    # delta-pkg is found under another spelling and with a local version label; the marker line for
    # Python 2 does not apply; the pip option is not a requirement.
    assert installer.missing() == ["beta!=2.0", "gamma~=1.0", 'beta<2; python_version >= "3.0"']


def test_a_malformed_requirement_names_the_file_and_line(module_file, tmp_path, site):
    installer = _installer(module_file, tmp_path, site, Dialogs(), ["torch>=2.1", "safetensors >>= 0.4"],
                           headless=True)
    with pytest.raises(module_file.DependencyError, match=r"requirements\.txt, line 2: not a valid requirement"):
        installer.missing()


# --- never installs headless or under --testing ------------------------------------------------


def test_testing_mode_never_installs_even_when_not_headless(module_file, headless_slicer, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("lvi-no-such-package\n", encoding="utf-8")
    installer = module_file.DependencyInstaller(requirementsPath=requirements,
                                                confirm=lambda text: pytest.fail("asked during --testing"))
    with pytest.raises(module_file.DependencyError, match="--testing"):
        installer.ensure()


def test_testing_mode_never_calls_pytorch_utils_even_when_it_is_there(module_file, headless_slicer, tmp_path, site,
                                                                      entryPoints, monkeypatch):
    monkeypatch.setattr(headless_slicer.modules, "pytorchutils", object(), raising=False)
    pytorchUtils = types.ModuleType("PyTorchUtils")
    pytorchUtils.PyTorchUtilsLogic = lambda: entryPoints
    monkeypatch.setitem(sys.modules, "PyTorchUtils", pytorchUtils)
    dialogs = Dialogs()
    installer = _installer(module_file, tmp_path, site, dialogs, [TORCH_REQUIREMENT])
    with pytest.raises(module_file.DependencyError, match="torch>=2.1"):
        installer.ensure()
    assert entryPoints.calls == [] and dialogs.asked == []


# --- the branches of a real install -------------------------------------------------------------


def test_present_requirements_ask_nothing_and_install_nothing(module_file, slicerWith):
    entryPoints = slicerWith()
    dialogs = Dialogs()
    # The extension's own requirements file, checked against the real environment of this test run.
    installer = module_file.DependencyInstaller(confirm=dialogs.confirm, offerRestart=dialogs.offerRestart)
    installer.ensure()
    installer.ensure()
    assert entryPoints.calls == [] and dialogs.asked == [] and dialogs.restartOffers == []


def test_missing_torch_goes_through_pytorch_utils_and_the_rest_through_pip_ensure(module_file, slicerWith, tmp_path,
                                                                                  site):
    entryPoints = slicerWith()
    dialogs = Dialogs()
    installer = _installer(module_file, tmp_path, site, dialogs, [TORCH_REQUIREMENT, "safetensors>=0.4"])
    installer.ensure()
    assert entryPoints.calls == [
        ("installTorch", {"askConfirmation": False, "forceComputationBackend": None, "torchVersionRequirement": ">=2.1"}),
        ("pip_ensure", {"requirements": ["safetensors>=0.4"], "prompt_install": False, "requester": "LVI Predictor"}),
    ]
    assert len(dialogs.asked) == 1  # one question for everything, before anything is installed
    assert "torch>=2.1" in dialogs.asked[0] and "PyTorch Utils" in dialogs.asked[0]
    assert "safetensors>=0.4" in dialogs.asked[0]
    assert len(dialogs.restartOffers) == 1 and "Restart Slicer" in dialogs.restartOffers[0]
    installer.ensure()  # satisfied now: no second question, no second install
    assert len(entryPoints.calls) == 2 and len(dialogs.asked) == 1


def test_torch_too_old_and_loaded_is_an_error_that_says_how_to_upgrade_it(module_file, slicerWith, tmp_path, site):
    import torch  # noqa: F401  (loaded, as after the panel has read a model card)

    entryPoints = slicerWith()
    _writeDistribution(site, "torch", "1.13.1")
    dialogs = Dialogs()
    installer = _installer(module_file, tmp_path, site, dialogs, [TORCH_REQUIREMENT])
    with pytest.raises(module_file.DependencyError) as error:
        installer.ensure()
    message = str(error.value)
    assert "torch 1.13.1 is installed" in message and "torch>=2.1" in message
    assert "PyTorch Utils" in message and "restart" in message.lower()
    assert entryPoints.calls == [] and dialogs.asked == []


def test_torch_too_old_but_not_loaded_yet_is_upgraded_through_pytorch_utils(module_file, slicerWith, tmp_path, site,
                                                                           monkeypatch):
    entryPoints = slicerWith()
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    _writeDistribution(site, "torch", "1.13.1")
    dialogs = Dialogs()
    installer = _installer(module_file, tmp_path, site, dialogs, [TORCH_REQUIREMENT])
    installer.ensure()
    assert [name for name, _kwargs in entryPoints.calls] == ["installTorch"]
    assert "1.13.1 is installed" in dialogs.asked[0]
    assert len(dialogs.restartOffers) == 1


def test_without_the_pytorch_extension_nothing_is_installed_and_the_error_names_it(module_file, slicerWith, tmp_path,
                                                                                   site):
    entryPoints = slicerWith(pytorchExtension=False)
    dialogs = Dialogs()
    installer = _installer(module_file, tmp_path, site, dialogs, [TORCH_REQUIREMENT, "safetensors>=0.4"])
    with pytest.raises(module_file.DependencyError) as error:
        installer.ensure()
    assert '"PyTorch" extension' in str(error.value) and "Extensions Manager" in str(error.value)
    # Not even safetensors: nothing is half-installed, and torch is never pip-installed directly.
    assert entryPoints.calls == [] and dialogs.asked == []


def test_declining_installs_nothing_and_is_not_asked_again(module_file, slicerWith, tmp_path, site):
    entryPoints = slicerWith()
    dialogs = Dialogs(answer=False)
    installer = _installer(module_file, tmp_path, site, dialogs, [TORCH_REQUIREMENT, "safetensors>=0.4"])
    for _attempt in range(2):
        with pytest.raises(module_file.DependencyError, match="declined"):
            installer.ensure()
    assert entryPoints.calls == [] and len(dialogs.asked) == 1 and dialogs.restartOffers == []


def test_pytorch_utils_installing_nothing_is_an_error_not_a_silent_success(module_file, slicerWith, tmp_path, site):
    entryPoints = slicerWith()
    entryPoints.torchInstalls = False
    dialogs = Dialogs()
    installer = _installer(module_file, tmp_path, site, dialogs, [TORCH_REQUIREMENT, "safetensors>=0.4"])
    with pytest.raises(module_file.DependencyError, match=r"PyTorch \(torch>=2.1\) was not installed"):
        installer.ensure()
    assert [name for name, _kwargs in entryPoints.calls] == ["installTorch"] and dialogs.restartOffers == []


def test_before_slicer_5_11_packages_go_through_pip_install_after_the_confirmation(module_file, slicerWith, tmp_path,
                                                                                   site):
    entryPoints = slicerWith(pipEnsure=False)
    dialogs = Dialogs()
    installer = _installer(module_file, tmp_path, site, dialogs, ["safetensors>=0.4", "lvi-demo-package==1.2"])
    installer.ensure()
    assert entryPoints.calls == [("pip_install", {"requirements": ["safetensors>=0.4", "lvi-demo-package==1.2"]})]
    assert len(dialogs.asked) == 1 and dialogs.restartOffers == []  # nothing was upgraded, nothing to restart for


def test_a_package_still_missing_after_pip_is_reported(module_file, slicerWith, tmp_path, site):
    entryPoints = slicerWith()
    entryPoints.pipInstalls = False
    installer = _installer(module_file, tmp_path, site, Dialogs(), ["safetensors>=0.4"])
    with pytest.raises(module_file.DependencyError, match="still missing after installing them: safetensors>=0.4"):
        installer.ensure()


# --- the module's self-test ---------------------------------------------------------------------


def test_self_test_runs_here_because_every_package_is_installed(module_file):
    """So test_slicer_logic's run of the self-test runs the predictions instead of skipping them."""
    assert module_file.LVIPredictorTest._skipReason() is None


def test_self_test_skips_with_a_message_where_a_package_is_missing(module_file, headless_slicer, tmp_path,
                                                                  monkeypatch):
    import io
    import unittest

    # A Resources folder whose requirements this environment does not meet (torch 2.13 is installed).
    resources = tmp_path / "Resources"
    (resources / "UI").mkdir(parents=True)
    (resources / "requirements.txt").write_text("torch>=999\n", encoding="utf-8")
    import sys

    monkeypatch.setattr(sys.modules["LVIPredictorSlicerLib.dependencies"], "resourcesDir", lambda: resources)

    # As `Slicer --testing` runs it (slicer.testing.runUnitTest uses unittest's runner).
    result = unittest.TextTestRunner(stream=io.StringIO()).run(
        unittest.TestLoader().loadTestsFromTestCase(module_file.LVIPredictorTest))
    assert result.wasSuccessful() and result.testsRun == 2 and len(result.skipped) == 2
    for _test, reason in result.skipped:
        assert "torch>=999" in reason and "never installs" in reason

    # As "Reload and Test" runs it: no exception, nothing loaded.
    module_file.LVIPredictorTest("runTest").runTest()
    assert headless_slicer.scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == 0
