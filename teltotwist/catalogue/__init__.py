# -*- test-case-name: tests.test_catalogue_catalogue -*-
"""IO names, units and scaling per tracker model, from Teltonika's AVL catalogue.

Pure: no Twisted, no other project layer. :func:`load_catalogue` reads the
shipped data once; :meth:`Catalogue.naming` gives a :class:`Naming` whose
:meth:`Naming.attributes` turns a record's raw ``io`` into named values.
"""

from teltotwist.catalogue.catalogue import (
    Catalogue,
    UnknownModelError,
    load_catalogue,
)
from teltotwist.catalogue.definition import Definition, attribute_name
from teltotwist.catalogue.naming import Naming

__all__ = [
    "Catalogue",
    "Definition",
    "Naming",
    "UnknownModelError",
    "attribute_name",
    "load_catalogue",
]
