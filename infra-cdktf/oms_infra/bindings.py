"""Import only the provider bindings oms uses, not all of them.

The prebuilt provider packages (``cdktf-cdktf-provider-aws`` and ``-kubernetes``) import every
one of their resource modules in their ``__init__``: 2,215 modules and about 230 MB of generated
Python for AWS. Importing ``cdktf_cdktf_provider_aws.vpc`` the ordinary way therefore compiles
and runs all of them, well over a minute on a small machine, and puts ``make synth`` and the
infra tests over their time budget.

``install`` registers each provider package as a bare package module (its ``__path__`` only), so
that ``import cdktf_cdktf_provider_aws.vpc`` loads the package's ``_jsii`` assembly and that one
module. Nothing else changes: each resource module imports the assembly itself, and the jsii
runtime imports a type's module on demand if JavaScript hands back a type Python has not loaded.
It must run before the first provider import, which is why ``oms_infra/__init__`` calls it.
"""

from __future__ import annotations

import importlib.util
import sys
import types

PROVIDER_PACKAGES = ("cdktf_cdktf_provider_aws", "cdktf_cdktf_provider_kubernetes")


def install() -> None:
    """Make each provider package importable without running its ``__init__``."""
    for name in PROVIDER_PACKAGES:
        if name in sys.modules:
            continue  # already imported in full (or installed): nothing to save
        spec = importlib.util.find_spec(name)
        if spec is None or spec.submodule_search_locations is None:
            raise ModuleNotFoundError(
                f"{name} is not installed: run `uv sync` (the infra dependency group)", name=name
            )
        package = types.ModuleType(name, f"{name}, loaded one resource module at a time")
        package.__path__ = list(spec.submodule_search_locations)
        package.__file__ = spec.origin
        package.__spec__ = spec
        sys.modules[name] = package
