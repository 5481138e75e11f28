"""ketamine_course: the pharmacology behind an interactive course on ketamine.

Modules:

* :mod:`ketamine_course.data`: cited tables from ``data/``, validated when read
* :mod:`ketamine_course.dosing`: dose arithmetic checked against labelled ranges
* :mod:`ketamine_course.pk`: pharmacokinetic models (closed forms and published compartment models)
* :mod:`ketamine_course.receptor`: NMDA receptor occupancy
* :mod:`ketamine_course.evidence`: trial statistics (NNT, odds ratios, pooling)
* :mod:`ketamine_course.plotting`: the course's figure style

Importing the package is cheap: scipy, statsmodels and matplotlib load only
when a function that needs them is called or its module is imported.
"""

from .dosing import DISCLAIMER

__all__ = ["DISCLAIMER", "__version__"]


def __getattr__(name: str) -> str:
    """``__version__``: the installed package's version, whose one source is ``pyproject.toml``.

    (``CITATION.cff`` repeats it for citation tools; ``tests/test_project.py`` checks that it agrees.)
    """
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("ketamine-course")
        except PackageNotFoundError:  # the source tree on sys.path, never installed
            return "0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
