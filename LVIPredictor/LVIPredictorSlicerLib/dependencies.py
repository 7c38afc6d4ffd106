"""The Python packages LVI Predictor needs inside Slicer, installed lazily and only after asking."""

import importlib
import logging
from pathlib import Path
from typing import List, Optional

import slicer
from slicer.i18n import tr as _

from LVIPredictorSlicerLib.resources import resourcesDir


class DependencyError(RuntimeError):
    """A Python package LVI Predictor needs is missing and was not (or cannot be) installed here."""


class DependencyInstaller:
    """Checks Resources/requirements.txt and installs what is missing, once, after asking.

    - Requirements are parsed with ``packaging`` (Slicer ships it), so every specifier and
      environment marker counts, not only ``>=``.
    - torch is installed (or upgraded) only through the PyTorch extension's PyTorchUtils, which
      picks the CUDA/CPU build that matches the GPU driver; a plain ``pip install torch`` would
      pick an arbitrary one. Without that extension, or when the installed torch is too old and
      already loaded (a loaded torch cannot be replaced while Slicer runs), a DependencyError says
      what to do instead. After torch is installed a restart is offered.
    - The other packages go through the running Slicer's ``pip_ensure`` (Slicer >= 5.11), else
      ``slicer.util.pip_install``.
    - One confirmation covers everything; after a refusal nothing is asked again this session.
    - ``headless`` and Slicer's --testing never install: they raise with what is missing, so
      a test or a script never changes the Python environment behind the user's back.

    ``confirm(text) -> bool`` and ``offerRestart(text)`` are the two dialogs (Slicer's by
    default). ``searchPath`` is where installed distributions are looked up (``sys.path``
    when None).
    """

    TORCH = "torch"
    REQUESTER = "LVI Predictor"

    def __init__(self, headless: bool = False, requirementsPath: Optional[Path] = None, confirm=None,
                 offerRestart=None, searchPath: Optional[List[str]] = None):
        self.headless = headless
        self.requirementsPath = Path(requirementsPath) if requirementsPath else resourcesDir() / "requirements.txt"
        self.confirm = confirm or (lambda text: slicer.util.confirmOkCancelDisplay(text))
        self.offerRestart = offerRestart or _offerRestart
        self.searchPath = searchPath
        self._declined = False
        self._satisfied = False

    def requirements(self) -> list:
        """The requirements (packaging.requirements.Requirement) that apply to this Python."""
        from packaging.requirements import InvalidRequirement, Requirement

        requirements = []
        lines = self.requirementsPath.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            text = line.split("#", 1)[0].strip()
            if not text or text.startswith("-"):
                continue  # blank, comment, or a pip option such as -r / --index-url
            try:
                requirement = Requirement(text)
            except InvalidRequirement as error:
                raise DependencyError("{}, line {}: not a valid requirement ({})".format(
                    self.requirementsPath, number, error)) from error
            if requirement.marker is None or requirement.marker.evaluate():
                requirements.append(requirement)
        return requirements

    def unmet(self) -> list:
        """(requirement, installed version or None) for every requirement not satisfied."""
        from packaging.version import InvalidVersion

        installed = self._installedVersions()
        unmet = []
        for requirement in self.requirements():
            version = installed.get(_canonicalName(requirement.name))
            try:
                satisfied = version is not None and requirement.specifier.contains(version, prereleases=True)
            except InvalidVersion:
                satisfied = False  # a version pip cannot compare is not known to satisfy anything
            if not satisfied:
                unmet.append((requirement, version))
        return unmet

    def missing(self) -> List[str]:
        """The requirement lines that are absent or not satisfied by the installed version."""
        return [str(requirement) for requirement, _version in self.unmet()]

    def ensure(self) -> None:
        """Return when every requirement is met; otherwise install after asking, or raise DependencyError."""
        if self._satisfied:
            return
        unmet = self.unmet()
        if not unmet:
            self._satisfied = True
            return
        listed = ", ".join(_describeUnmet(requirement, version) for requirement, version in unmet)
        if self.headless or _testingEnabled():
            raise DependencyError(
                "LVI Predictor needs Python packages that are not installed: {}. Nothing is installed in a "
                "headless or --testing run; click Predict LVI in the panel to install them (it asks first)."
                .format(listed))
        torch = [(r, v) for r, v in unmet if _canonicalName(r.name) == self.TORCH]
        others = [(r, v) for r, v in unmet if _canonicalName(r.name) != self.TORCH]
        # Everything that cannot be installed here is refused before anything is asked or installed.
        torchLogic = self._torchInstaller(*torch[0]) if torch else None
        declined = _("Installation declined; LVI Predictor needs: {packages}").format(packages=listed)
        if self._declined:
            raise DependencyError(declined)
        lines = ["• {} — {}".format(_describeUnmet(r, v), _("through the PyTorch extension (PyTorch Utils), which "
                                                             "picks the build that matches your GPU driver"))
                 for r, v in torch]
        lines += ["• {} — {}".format(_describeUnmet(r, v), _("with pip")) for r, v in others]
        if not self.confirm(_("LVI Predictor needs these Python packages. They will be downloaded and installed "
                              "now (this can take several minutes):\n\n{packages}").format(packages="\n".join(lines))):
            self._declined = True
            raise DependencyError(declined)
        if torch:
            requirement = torch[0][0]
            logging.info("LVIPredictor: installing %s through PyTorch Utils", requirement)
            if torchLogic.installTorch(askConfirmation=False, torchVersionRequirement=str(requirement.specifier)) is None:
                raise DependencyError(_("PyTorch ({requirement}) was not installed. Install it in the PyTorch Utils "
                                        "module, restart Slicer and click Predict LVI again.").format(
                    requirement=requirement))
        restart = bool(torch)
        if others:
            byPipEnsure = self._pipInstall([r for r, _v in others])
            # pip_ensure offers a restart itself when it replaced a package that was already loaded.
            restart = restart or (not byPipEnsure and any(v is not None for _r, v in others))
        importlib.invalidate_caches()
        still = self.unmet()
        if still:
            raise DependencyError(_("These Python packages are still missing after installing them: {packages}. "
                                    "See the Python console for pip's output.").format(
                packages=", ".join(_describeUnmet(r, v) for r, v in still)))
        self._satisfied = True
        if restart:
            self.offerRestart(_("Python packages for LVI Predictor were installed ({packages}). Restart Slicer now? "
                                "A restart is recommended so that every module uses the new versions; No continues "
                                "without restarting.").format(packages=", ".join(str(r) for r, _v in unmet)))

    def _torchInstaller(self, requirement, installedVersion):
        """PyTorchUtilsLogic, when it can install (or upgrade to) ``requirement``; else a DependencyError
        saying what to do. A too old torch that is not imported yet can still be upgraded in place."""
        import sys

        modules = getattr(slicer, "modules", None)
        PyTorchUtils = None
        if modules is not None and hasattr(modules, "pytorchutils"):
            try:
                import PyTorchUtils
            except ImportError:
                PyTorchUtils = None
        if PyTorchUtils is None:
            found = "" if installedVersion is None else _(" (torch {version} is installed)").format(
                version=installedVersion)
            raise DependencyError(_(
                "LVI Predictor needs PyTorch ({requirement}){found}, installed through the PyTorch extension, which "
                "picks the build that matches your GPU driver. Install the \"PyTorch\" extension (View → Extensions "
                "Manager), restart Slicer and click Predict LVI again.").format(requirement=requirement, found=found))
        if installedVersion is not None and self.TORCH in sys.modules:
            raise DependencyError(_(
                "torch {version} is installed but LVI Predictor needs {requirement}. A PyTorch that Slicer has loaded "
                "cannot be replaced while Slicer runs: open the PyTorch Utils module, uninstall PyTorch, restart "
                "Slicer, then install it there with the version requirement \"{specifier}\" (or click Predict LVI, "
                "which installs it after asking).").format(
                version=installedVersion, requirement=requirement, specifier=requirement.specifier))
        return PyTorchUtils.PyTorchUtilsLogic()

    def _pipInstall(self, requirements) -> bool:
        """Install ``requirements`` after the confirmation; True when Slicer's pip_ensure did it."""
        pipEnsure = _slicerPipEnsure()
        logging.info("LVIPredictor: installing %s with %s", ", ".join(map(str, requirements)),
                     "pip_ensure" if pipEnsure else "slicer.util.pip_install")
        if pipEnsure is not None:
            # Already confirmed above; pip_ensure still offers a restart when it upgraded a loaded package.
            pipEnsure(list(requirements), prompt_install=False, requester=self.REQUESTER)
            return True
        slicer.util.pip_install([str(requirement) for requirement in requirements])
        return False

    def _installedVersions(self) -> dict:
        """{canonical distribution name: version}; the first one on the search path wins, as for import."""
        from importlib import metadata

        found = {}
        where = {} if self.searchPath is None else {"path": list(self.searchPath)}
        for distribution in metadata.distributions(**where):
            name = distribution.metadata["Name"]
            if name:
                found.setdefault(_canonicalName(name), distribution.version)
        return found


def _canonicalName(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def _describeUnmet(requirement, installedVersion) -> str:
    if installedVersion is None:
        return str(requirement)
    return "{} ({} is installed)".format(requirement, installedVersion)


def _testingEnabled() -> bool:
    app = getattr(slicer, "app", None)
    return app is not None and bool(app.testingEnabled())


def _slicerPipEnsure():
    """Slicer's own check-and-install, or None before Slicer 5.11 (its module is ``slicer.packaging``;
    some 5.11 development builds call it ``slicer.pydeps``)."""
    for name in ("slicer.packaging", "slicer.pydeps"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "pip_ensure"):
            return module.pip_ensure
    return None


def _offerRestart(text: str) -> None:
    if slicer.util.confirmYesNoDisplay(text):
        slicer.util.restart()
