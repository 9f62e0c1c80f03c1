"""Sphinx configuration for the teltotwist documentation."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version

project = "teltotwist"
author = "The teltotwist contributors"
copyright = "The teltotwist contributors"

try:
    release = distribution_version("teltotwist")
except PackageNotFoundError:  # building the docs without the package installed
    release = "unknown"
version = release

extensions = ["sphinx.ext.autodoc"]
autodoc_typehints = "description"

exclude_patterns = ["_build"]
nitpicky = False

html_theme = "alabaster"
html_title = f"teltotwist {release}"
