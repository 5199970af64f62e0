"""The frameworks a project may train and serve with, and what each version means in both places.

One table, read by the config's validation, by the local environments (what to install) and by
``sagebuild aws deploy`` (which SageMaker image): ``training.framework`` and
``training.framework_version`` mean the same thing locally and on AWS. A version is the
SageMaker container's own version string (``1.9-0``, ``3.2-0``), as in the SageMaker SDK's image
catalogue; locally it stands for the packages that container preinstalls at that version.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["FRAMEWORKS", "FrameworkChoice", "resolve_framework", "LOCAL_SERVING"]

# What SageMaker's containers preinstall beside the framework (a script imports these freely).
_SCIENTIFIC = ("pandas", "numpy", "scipy", "joblib")

# framework -> container version -> the framework's own package pin (the others come at versions
# compatible with it). The newest version of each is the one SageBuild's own environment carries,
# so a local environment for it is layered over SageBuild's and installs nothing.
FRAMEWORKS: dict[str, dict[str, tuple[str, ...]]] = {
    "sklearn": {
        # built against numpy 1.x, as those containers ship it: numpy 2 breaks their compiled parts
        "1.2-1": ("scikit-learn~=1.2.1", "numpy<2"),
        "1.4-2": ("scikit-learn~=1.4.2", "numpy<2"),
        "1.9-0": ("scikit-learn~=1.9.0",),
    },
    "xgboost": {
        "1.7-1": ("xgboost~=1.7.6", "scikit-learn"),
        "3.0-5": ("xgboost-cpu~=3.0.5", "scikit-learn"),
        "3.2-0": ("xgboost-cpu~=3.2.0", "scikit-learn"),
    },
    # Deep-learning containers: their images on AWS; locally they do not run (no GPU, gigabytes of
    # wheels): use `custom` with a requirements.txt naming torch or tensorflow instead.
    "pytorch": {"2.5.1": (), "2.6.0": ()},
    "tensorflow": {"2.18.0": (), "2.19.0": ()},
    # Only the code folder's requirements.txt; the script defines its own serving functions.
    "custom": {"": ()},
}

# Frameworks whose serving defaults run here (the model server's fall-backs when the script
# defines no model_fn, input_fn, predict_fn or output_fn).
LOCAL_SERVING = ("sklearn", "xgboost", "custom")
_LOCAL = ("sklearn", "xgboost", "custom")


@dataclass(frozen=True)
class FrameworkChoice:
    """A validated framework and version, with the packages a local environment starts from."""

    framework: str
    version: str
    packages: tuple[str, ...]

    @property
    def runs_locally(self) -> bool:
        return self.framework in _LOCAL

    @property
    def aws_framework(self) -> str:
        """The ``Framework`` stack parameter: ``custom`` runs in the scikit-learn image on AWS."""
        return "sklearn" if self.framework == "custom" else self.framework


def _latest(framework: str) -> str:
    return list(FRAMEWORKS[framework])[-1]


def resolve_framework(framework: str | None, version: str | None) -> FrameworkChoice:
    """The choice a config names; no version means the newest in the table.

    Raises:
        ConfigError: an unknown framework or version, listing the supported ones.
    """
    name = framework or "sklearn"
    if name not in FRAMEWORKS:
        raise ConfigError(f"'training.framework' {name!r} is not supported: use one of {', '.join(FRAMEWORKS)}")
    versions = FRAMEWORKS[name]
    if name == "custom":
        if version:
            raise ConfigError("'training.framework_version' does not apply to 'custom' (its requirements.txt "
                              "says what to install)")
        return FrameworkChoice(name, "", ())
    chosen = version or _latest(name)
    if chosen not in versions:
        raise ConfigError(f"'training.framework_version' {chosen!r} is not supported for {name}: use one of "
                          f"{', '.join(versions)}")
    base = _SCIENTIFIC if name in ("sklearn", "xgboost") else ()
    return FrameworkChoice(name, chosen, versions[chosen] + base)
