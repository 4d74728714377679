"""What odprep is installed as, and the optional parts of the install.

The core install carries the main job (annotations to records, label maps, configs,
``check``). A feature that needs a heavy library names the extra that brings it, in one
line, when that library is missing.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from odprep.errors import OdprepError

DISTRIBUTION = "tf-odprep"  # the name on the package registry ("odprep" there is another project)


def install_hint(extra: str) -> str:
    return f'pip install "{DISTRIBUTION}[{extra}]"'


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or fail in one line that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = getattr(error, "name", None) or module
        raise OdprepError(feature, f"needs {missing.split('.')[0]}, which is not installed",
                          f"Install it: {install_hint(extra)}") from None
