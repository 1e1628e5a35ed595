"""The ``stack image …``, ``stack build`` and ``stack info`` verbs: argv in, service call, text out.

``add_parsers(subparsers)`` registers the verbs on the ``stack`` parser; ``VERBS`` maps each verb
to its handler, called as ``handler(args, options, out, err)`` like the other verbs (a fifth,
unused argument is accepted). The work is in ``stackd.daemon.images``; this module renders what
it returns (tables, JSON, progress lines) and is the only part of the image verbs that prints.
Errors are ``StackdError`` s for the caller to report (exit 1, or 2 for a mistake in the input);
``inspect`` and ``rm`` report a missing image and go on with the others.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from stackd.errors import StackdError
from stackd.spec.options import ProjectOptions

if TYPE_CHECKING:
    pass

Handler = Callable[[argparse.Namespace, ProjectOptions, TextIO, TextIO], int]


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``image`` (ls, inspect, rm, prune, import, export, bootstrap), ``build`` and ``info``."""
    image = sub.add_parser("image", help="manage the images in stackd's store")
    verbs = image.add_subparsers(dest="image_command", metavar="COMMAND")
    verbs.required = True
    ls = verbs.add_parser("ls", aliases=["list"], help="list the images")
    ls.add_argument("--format", choices=("table", "json"), default="table")
    ls.add_argument("-q", "--quiet", action="store_true", help="only the image ids")
    inspect = verbs.add_parser("inspect", help="show images as JSON")
    inspect.add_argument("image_names", nargs="+", metavar="NAME")
    rm = verbs.add_parser("rm", aliases=["remove"], help="remove image names (prune frees their content)")
    rm.add_argument("image_names", nargs="+", metavar="NAME")
    verbs.add_parser("prune", help="free the content no image name refers to")
    imp = verbs.add_parser("import", aliases=["load"], help="import an OCI or docker save archive")
    imp.add_argument("archive", metavar="FILE")
    imp.add_argument("--name", dest="image_name", metavar="NAME", help="name of a one-image archive")
    exp = verbs.add_parser("export", aliases=["save"], help="write an image as an OCI archive")
    exp.add_argument("image_name", metavar="NAME")
    exp.add_argument("archive", metavar="FILE")
    boot = verbs.add_parser("bootstrap", help="make debian:<suite>[-slim] from Debian's archive")
    boot.add_argument("image_name", metavar="REF")
    boot.add_argument("--mirror", help="Debian mirror URL (default: deb.debian.org)")

    b = sub.add_parser("build", help="build the images of services that have build:")
    b.add_argument("service_names", nargs="*", metavar="SERVICE")
    b.add_argument("--no-cache", action="store_true", help="do not use cached build steps")
    b.add_argument("--pull", action="store_true",
                   help="accepted; base images come from the store or a Debian bootstrap (no registry)")

    i = sub.add_parser("info", help="show the runtime, cgroups, conmon and image store in use")
    i.add_argument("--format", choices=("text", "json"), default="text")


# ----------------------------------------------------------------------------------- rendering


def human_size(n: int) -> str:
    """Bytes in Docker's decimal units: ``512B``, ``2.01MB``, ``1.2GB``."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{n}B" if unit == "B" else f"{value:.3g}{unit}"
        value /= 1000
    return f"{n}B"


def ago(created: str | None, now: datetime) -> str:
    """``created`` (RFC 3339) as Docker shows it: ``5 minutes ago``, ``3 weeks ago``."""
    if not created:
        return "N/A"
    try:
        then = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return created
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return f"{human_duration(int((now - then).total_seconds()))} ago"


def human_duration(seconds: int) -> str:
    """A duration in Docker's words: ``Less than a second``, ``About a minute``, ``3 weeks``."""
    minutes, hours = seconds // 60, seconds // 3600
    steps = ((seconds < 1, "Less than a second"), (seconds == 1, "1 second"),
             (seconds < 60, f"{seconds} seconds"), (minutes == 1, "About a minute"),
             (minutes < 60, f"{minutes} minutes"), (hours == 1, "About an hour"),
             (hours < 48, f"{hours} hours"), (hours < 24 * 7 * 2, f"{hours // 24} days"),
             (hours < 24 * 30 * 2, f"{hours // (24 * 7)} weeks"),
             (hours < 24 * 365 * 2, f"{hours // (24 * 30)} months"))
    return next((text for cond, text in steps if cond), f"{hours // (24 * 365)} years")


def table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")


def _json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2) + "\n")


# ------------------------------------------------------------------------------------ handlers


def image(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO,
          _runtime: object = None) -> int:
    from stackd.daemon import images as svc  # imported when used: it is heavy

    verb = _ALIASES.get(args.image_command, args.image_command)
    return _IMAGE_VERBS[verb](args, options, svc.data_root(options.environ), out, err)


def _ls(args: argparse.Namespace, options: ProjectOptions, root: Path, out: TextIO, err: TextIO) -> int:
    from stackd.daemon import images as svc  # imported when used: it is heavy

    rows = svc.image_ls(root)
    if args.quiet:
        out.writelines(f"{r.short_id}\n" for r in rows)
    elif args.format == "json":
        out.writelines(json.dumps(r.to_dict()) + "\n" for r in rows)
    else:
        now = datetime.now(UTC)
        body = [[r.repository, r.tag, r.short_id, ago(r.created, now), human_size(r.size)] for r in rows]
        table([["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], *body], out)
    return 0


def _inspect(args: argparse.Namespace, options: ProjectOptions, root: Path, out: TextIO, err: TextIO) -> int:
    from stackd.daemon import images as svc  # imported when used: it is heavy

    found, code = _each(args.image_names, lambda n: svc.image_inspect(root, n), err)
    _json(found, out)
    return code


def _rm(args: argparse.Namespace, options: ProjectOptions, root: Path, out: TextIO, err: TextIO) -> int:
    from stackd.daemon import images as svc  # imported when used: it is heavy

    removed, code = _each(args.image_names, lambda n: svc.image_rm(root, n), err)
    for r in removed:
        out.writelines(f"Untagged: {n}\n" for n in r.untagged)
        if r.last:
            out.write(f"Unreferenced: {r.id} (`stack image prune` frees its content)\n")
    return code


def _prune(args: argparse.Namespace, options: ProjectOptions, root: Path, out: TextIO, err: TextIO) -> int:
    from stackd.daemon import images as svc  # imported when used: it is heavy

    p = svc.image_prune(root)
    out.write(f"Deleted {p.blobs} blob(s), {p.layers} unpacked layer(s), {p.temporary} leftover(s)\n"
              f"Total reclaimed space: {human_size(p.reclaimed)}\n")
    return 0


def _import(args: argparse.Namespace, options: ProjectOptions, root: Path, out: TextIO, err: TextIO) -> int:
    from stackd.daemon import images as svc  # imported when used: it is heavy

    for r in svc.image_import(root, _path(args.archive, options), args.image_name):
        out.write(f"Loaded image: {r.name} ({r.short_id})\n")
    return 0


def _export(args: argparse.Namespace, options: ProjectOptions, root: Path, out: TextIO, err: TextIO) -> int:
    from stackd.daemon import images as svc  # imported when used: it is heavy

    written = svc.image_export(root, args.image_name, _path(args.archive, options))
    print(f"Wrote {args.image_name} to {written}", file=err)
    return 0


def _bootstrap(args: argparse.Namespace, options: ProjectOptions, root: Path, out: TextIO,
               err: TextIO) -> int:
    from stackd.daemon import images as svc  # imported when used: it is heavy

    print(f"Bootstrapping {args.image_name} from {args.mirror or 'Debian'} (this takes a while)", file=err)
    r = svc.image_bootstrap(root, args.image_name, args.mirror)
    out.write(f"Loaded image: {r.name} ({r.short_id}, {human_size(r.size)})\n")
    return 0


_ALIASES = {"list": "ls", "remove": "rm", "load": "import", "save": "export"}
_IMAGE_VERBS: dict[str, Callable[[argparse.Namespace, ProjectOptions, Path, TextIO, TextIO], int]] = {
    "ls": _ls, "inspect": _inspect, "rm": _rm, "prune": _prune, "import": _import, "export": _export,
    "bootstrap": _bootstrap}


def _path(name: str, options: ProjectOptions) -> Path:
    path = Path(name)
    return path if path.is_absolute() else Path(options.cwd, path)


def _each(names: list[str], fn: Callable[[str], Any], err: TextIO) -> tuple[list[Any], int]:
    """``fn`` of every name; a failing name is reported and the others still done."""
    done, code = [], 0
    for name in names:
        try:
            done.append(fn(name))
        except StackdError as exc:
            for line in str(exc).splitlines():
                print(f"error: {line}", file=err)
            code = max(code, exc.exit_code)
    return done, code


def build(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO,
          _runtime: object = None) -> int:
    from stackd.daemon import images as svc  # imported when used: it is heavy

    if args.pull:
        print("warning: --pull has no effect: base images come from the store or a Debian bootstrap",
              file=err)

    def progress(service: str, event: Any) -> None:
        print(f"{service}  {svc.describe_event(event)}", file=err, flush=True)

    built = svc.build(options, tuple(args.service_names), args.no_cache, progress=progress,
                      warn=lambda text: print(f"warning: {text}", file=err))
    for b in built:
        out.write(f"Built {b.service}: {', '.join(b.names)} ({b.id.removeprefix('sha256:')[:12]})\n")
    if not built:
        print("nothing to build: no selected service has a build section", file=err)
    return 0


def info(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO,
         _runtime: object = None) -> int:
    from stackd.daemon import images as svc  # imported when used: it is heavy

    facts = svc.info(options.environ)
    if args.format == "json":
        _json(facts.to_dict(), out)
        return 0
    problems = facts.problems
    rt, conmon = facts.runtime, facts.conmon
    lines = [("stackd version", facts.version), ("data root", facts.data_root), ("run dir", facts.run_dir)]
    if rt is None:
        lines.append(("runtime", f"none ({problems.get('runtime')})"))
    else:
        lines.append(("runtime", f"{rt['name']} {rt['version']} ({rt['path']})"))
        lines.append(("crun workaround", f"yes: create/run in a private mount namespace without "
                      f"{rt['unified_mount']}" if rt["private_mount_namespace"] else "no"))
    lines.append(("cgroups", facts.cgroup_mode or f"unknown ({problems.get('cgroups')})"))
    lines.append(("conmon", f"{conmon['version'] or '?'} ({conmon['path']})" if conmon
                  else f"none ({problems.get('conmon')})"))
    if facts.images is None:
        lines.append(("images", f"unreadable ({problems.get('images')})"))
    else:
        lines.append(("images", f"{facts.images} ({human_size(facts.store_bytes)} in "
                                f"{facts.data_root}/images)"))
    width = max(len(k) for k, _ in lines) + 1
    out.writelines(f"{k + ':':<{width}} {v}\n" for k, v in lines)
    return 0


VERBS: dict[str, Handler] = {"image": image, "build": build, "info": info}
