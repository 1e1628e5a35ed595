"""Image build logic, pure: Dockerfiles, .dockerignore and cache keys (groundwork for ``stack build``).

Modules, in the order data flows through them:

- ``lexer``: Dockerfile text -> logical lines (directives, ``# escape=``, continuations, heredocs).
- ``parsers`` + ``instructions``: each line -> a typed, frozen instruction with its line numbers
  (``flags`` reads the ``--options``, ``words`` splits and substitutes words as Docker does).
- ``dockerfile``: the instructions grouped into stages (``parse_dockerfile``).
- ``resolve``: build args, ENV and stage references resolved for one ``--target`` (``BuildPlan``).
- ``ignore``: .dockerignore patterns and the build context they select.
- ``cache``: per-step cache keys from the plan and the context's content.

Nothing here runs a build, touches an image store or starts a process; the only I/O is reading
the Dockerfile, the .dockerignore file and the build context. Mistakes in the user's files are
``SpecError`` s naming file and line.
"""

from stackd.build.cache import BuildContext, load_context, stage_keys, step_key, step_text
from stackd.build.dockerfile import Dockerfile, Stage, parse_dockerfile, read_dockerfile
from stackd.build.ignore import IgnoreMatcher, context_files, parse_dockerignore, read_dockerignore
from stackd.build.resolve import BuildPlan, ResolvedStage, Step, resolve

__all__ = [
    "BuildContext",
    "BuildPlan",
    "Dockerfile",
    "IgnoreMatcher",
    "ResolvedStage",
    "Stage",
    "Step",
    "context_files",
    "load_context",
    "parse_dockerfile",
    "parse_dockerignore",
    "read_dockerfile",
    "read_dockerignore",
    "resolve",
    "stage_keys",
    "step_key",
    "step_text",
]
