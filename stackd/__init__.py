"""stackd: a declarative multi-container orchestrator for one Linux host.

The package is layered (see docs/architecture.md): ``spec`` reads stack files into frozen
models, ``graph`` orders services, ``plan`` compares desired and observed state. Only ``cli``
prints, parses argv or exits the process.
"""

__version__ = "0.1.0"
