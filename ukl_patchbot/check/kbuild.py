"""Configure and build a Linux tree out of tree, with plain `make` through our runner.

Configuration is ``make <base>`` (tinyconfig by default), then the fragments
merged by the kernel's own ``scripts/kconfig/merge_config.sh -m``, then
``make olddefconfig``. Kconfig silently drops an option whose dependencies are
not met; we compare every option a fragment asks for with the final
``.config`` and fail the config step naming each dropped option.

Builds go through ccache with ``CCACHE_BASEDIR`` set to a directory that
contains both the source tree and the build directories, so absolute paths in
the compiler command lines become relative and a second variant built in its
own directory hits the cache for every object its option does not change.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ukl_patchbot.check.results import (
    BuildResult,
    BuildStatus,
    ConfigResult,
    ConfigStatus,
    DroppedOption,
)
from ukl_patchbot.core import cmdline
from ukl_patchbot.core.errors import InfraError, UserError
from ukl_patchbot.core.runner import run

log = logging.getLogger(__name__)

IMAGE_REL = "arch/x86/boot/bzImage"
EXTRA_FRAGMENT = "patchbot-extra.config"
INCOMPLETE_MARKER = ".patchbot-build-incomplete"
FIRST_ERRORS = 10

# Tool -> Debian package, for one "install these" message.
TOOL_PACKAGES: dict[str, str] = {
    "make": "make",
    "gcc": "gcc",
    "ld": "binutils",
    "flex": "flex",
    "bison": "bison",
    "bc": "bc",
    "perl": "perl",
    "cpio": "cpio",
    "ccache": "ccache",
    "qemu-system-x86_64": "qemu-system-x86",
}
# Headers the x86 build needs; no binary to look for, so check the file.
HEADER_PACKAGES: dict[str, str] = {
    "/usr/include/gelf.h": "libelf-dev",
    "/usr/include/openssl/ssl.h": "libssl-dev",
}


def missing_packages(tools: Sequence[str], headers: Sequence[str] = ()) -> list[str]:
    """Debian packages that provide the ``tools`` and ``headers`` not present here."""
    pkgs = [TOOL_PACKAGES.get(t, t) for t in tools if shutil.which(t) is None]
    pkgs += [HEADER_PACKAGES[h] for h in headers if not Path(h).exists()]
    return sorted(set(pkgs))


def require_tools(tools: Sequence[str], headers: Sequence[str] = ()) -> None:
    """Raise one `InfraError` naming every Debian package to install, if any tool is missing."""
    pkgs = missing_packages(tools, headers)
    if pkgs:
        raise InfraError(
            "missing build tools: " + ", ".join(pkgs),
            hint="apt-get install " + " ".join(pkgs) + "   (or run: bash ci/install-deps.sh)",
        )


BUILD_TOOLS = ("make", "gcc", "ld", "flex", "bison", "bc", "perl")
BUILD_HEADERS = ("/usr/include/gelf.h",)


_SET_RE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET_RE = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


def parse_config(text: str) -> dict[str, str]:
    """Options in a .config or fragment: name -> value; "n" for ``# CONFIG_X is not set``."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if m := _SET_RE.match(line):
            out[m.group(1)] = m.group(2)
        elif m := _UNSET_RE.match(line):
            out[m.group(1)] = "n"
    return out


def dropped_options(
    requested: Mapping[str, Mapping[str, str]], final: Mapping[str, str],
    known: Container[str] | None = None,
) -> tuple[DroppedOption, ...]:
    """Options whose final value differs from what a fragment asked for.

    ``requested`` maps fragment name -> its options, in merge order: a later
    fragment overrides an earlier one, as merge_config.sh does. Options not
    in ``known`` (the tree's Kconfig symbols, when given) are skipped: a
    fragment shared by two Linux lines names some options of one line only.
    """
    wanted: dict[str, tuple[str, str]] = {}
    for frag, opts in requested.items():
        for name, value in opts.items():
            wanted[name] = (value, frag)
    out = []
    for name, (value, frag) in wanted.items():
        if known is not None and name not in known:
            continue
        actual = final.get(name, "n")
        if actual != value:
            out.append(DroppedOption(name, value, actual, frag))
    return tuple(sorted(out, key=lambda d: d.name))


_SYMBOL_RE = re.compile(r"^\s*(?:menu)?config\s+(\w+)", re.MULTILINE)


def kconfig_symbols(src: Path) -> frozenset[str]:
    """Every ``CONFIG_<symbol>`` the Kconfig files of the tree ``src`` define."""
    names: set[str] = set()
    for path in src.rglob("Kconfig*"):
        if path.is_file():
            names.update(_SYMBOL_RE.findall(path.read_text(errors="replace")))
    return frozenset(f"CONFIG_{n}" for n in names)


def format_fragment(options: Mapping[str, str]) -> str:
    """A fragment file's text for ``options`` (value "n" becomes ``is not set``)."""
    lines = []
    for name, value in options.items():
        lines.append(f"# {name} is not set" if value == "n" else f"{name}={value}")
    return "\n".join(lines) + "\n"


def kconfig_string(value: str) -> str:
    """A Kconfig string literal for ``value``."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class CcacheMode(StrEnum):
    """How ccache finds a compilation's result (see ccache(1), "Cache hits")."""

    DEPEND = "depend"  # hash of the source and the headers it read; never runs cpp
    DIRECT = "direct"  # the same hash first, then the preprocessed text (ccache's default)
    PREPROCESSOR = "preprocessor"  # the preprocessed text only: cpp on every call


@dataclass(frozen=True)
class BuildEnv:
    """How make is invoked: jobs, ccache and the path base that makes ccache hit across dirs."""

    jobs: int = 2
    ccache_dir: Path | None = None  # None = no ccache
    ccache_basedir: Path | None = None
    extra_make_vars: tuple[str, ...] = ()
    ccache_mode: CcacheMode = CcacheMode.DEPEND

    def make_vars(self) -> list[str]:
        out = []
        if self.ccache_dir is not None:
            # Host tools too: fixdep, kconfig and objtool are rebuilt in every new build dir.
            out += ["CC=ccache gcc", "HOSTCC=ccache gcc"]
        out += list(self.extra_make_vars)
        return out

    def env(self) -> dict[str, str]:
        # Fixed build identity: the same tree gives the same init/version.o,
        # which keeps ccache hits and image sizes stable across runs. Without
        # KBUILD_BUILD_VERSION the kernel counts builds in <out>/.version, so
        # a kept build directory would give "#2", "#3"... and a different image.
        env = {
            "KBUILD_BUILD_TIMESTAMP": "1970-01-01",
            "KBUILD_BUILD_USER": "patchbot",
            "KBUILD_BUILD_HOST": "patchbot",
            "KBUILD_BUILD_VERSION": "1",
            "LC_ALL": "C",
        }
        if self.ccache_dir is not None:
            env["CCACHE_DIR"] = str(self.ccache_dir)
            env["CCACHE_NOHASHDIR"] = "1"
            # Depend mode: a miss costs no extra preprocessor run. Measured on
            # a cold classic build of 6.1.192: 96 s, plain make 99.5-106 s,
            # default ccache mode 114 s; a warm rebuild still hits (32 s). The
            # other modes only win when a header changes without changing the
            # preprocessed text: on 6.1.190 -> 6.1.192, 8 of 238 touched
            # objects (tests/bench/bench_pp_reuse.py), less than cpp costs.
            if self.ccache_mode == CcacheMode.DEPEND:
                env["CCACHE_DEPEND"] = "1"
            elif self.ccache_mode == CcacheMode.PREPROCESSOR:
                env["CCACHE_NODIRECT"] = "1"
            if self.ccache_basedir is not None:
                env["CCACHE_BASEDIR"] = str(self.ccache_basedir)
        return env


def _make(src: Path, out: Path, benv: BuildEnv, *targets: str) -> list[str]:
    return ["make", "-C", str(src), f"O={out}", *benv.make_vars(), *targets]


def configure_commands(src: Path, out: Path, fragments: Sequence[Path], benv: BuildEnv,
                       base: str = "tinyconfig") -> list[list[str]]:
    """The commands `configure` runs (in ``out``), for --dry-run and reproducers."""
    merge = src / "scripts/kconfig/merge_config.sh"
    return [
        _make(src, out, benv, base),
        ["bash", str(merge), "-m", "-O", str(out), str(out / ".config"), *map(str, fragments)],
        _make(src, out, benv, "olddefconfig"),
    ]


def build_command(src: Path, out: Path, benv: BuildEnv, targets: Sequence[str] = ("bzImage",)
                  ) -> list[str]:
    """The command `build` runs (in ``out``)."""
    return _make(src, out, benv, f"-j{benv.jobs}", *targets)


def configure(
    src: Path,
    out: Path,
    fragments: Sequence[Path],
    *,
    extra: Mapping[str, str] | None = None,
    base: str = "tinyconfig",
    benv: BuildEnv = BuildEnv(),
    log_path: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    timeout: float = 600,
) -> ConfigResult:
    """Write ``out/.config`` from ``base`` plus ``fragments`` plus ``extra`` options.

    ``extra`` are options computed at run time (e.g. the UKL archive path);
    they are written as one more fragment, ``out/patchbot-extra.config``.
    """
    start = time.monotonic()
    for f in fragments:
        if not f.is_file():
            raise UserError(f"kconfig fragment {f} does not exist")
    merge = src / "scripts/kconfig/merge_config.sh"
    if not merge.is_file():
        raise UserError(f"{src} does not look like a Linux tree (no {merge.relative_to(src)})")
    out.mkdir(parents=True, exist_ok=True)
    frag_paths = list(fragments)
    if extra:
        extra_path = out / EXTRA_FRAGMENT
        extra_path.write_text(format_fragment(extra))
        frag_paths.append(extra_path)
    names = tuple(str(f) for f in frag_paths)
    env = benv.env()
    for argv in configure_commands(src, out, frag_paths, benv, base):
        res = run(argv, cwd=out, log_path=log_path, extra_env=env, timeout=timeout, on_line=on_line)
        if not res.ok:
            return ConfigResult(ConfigStatus.FAILED, names, (), time.monotonic() - start,
                                _s(log_path), tuple(res.tail[-FIRST_ERRORS:]))
    requested = {str(f): parse_config(f.read_text()) for f in frag_paths}
    final = parse_config((out / ".config").read_text())
    dropped = dropped_options(requested, final, kconfig_symbols(src) or None)
    status = ConfigStatus.DROPPED if dropped else ConfigStatus.OK
    return ConfigResult(status, names, dropped, time.monotonic() - start, _s(log_path))


def _s(p: Path | None) -> str | None:
    return str(p) if p is not None else None


_WARN_RE = re.compile(r"(?:^|\s)(?:warning|WARNING):|: warning: ")
_ERR_RE = re.compile(r": (?:fatal )?error: |: undefined reference to |^make(?:\[\d+\])?: \*\*\* |"
                     r"^ERROR: |Error \d+$|: multiple definition of ")


def scan_build_log(lines: Sequence[str]) -> tuple[int, tuple[str, ...]]:
    """(warning count, first error lines) of a build log."""
    warnings = sum(1 for x in lines if _WARN_RE.search(x))
    errors: list[str] = []
    for x in lines:
        if _ERR_RE.search(x) and x not in errors:
            errors.append(x.rstrip())
            if len(errors) >= FIRST_ERRORS:
                break
    return warnings, tuple(errors)


def build(
    src: Path,
    out: Path,
    *,
    targets: Sequence[str] = ("bzImage",),
    benv: BuildEnv = BuildEnv(),
    log_path: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    timeout: float = 3600,
) -> BuildResult:
    """Build ``targets`` in ``out``; a compile error is a FAILED result, not an exception."""
    if not (src / "Makefile").is_file():
        raise UserError(f"{src} does not look like a Linux tree (no Makefile)")
    out.mkdir(parents=True, exist_ok=True)
    argv = build_command(src, out, benv, targets)
    lines: list[str] = []

    def collect(line: str) -> None:
        lines.append(line)
        if on_line is not None:
            on_line(line)

    # Present while make runs: a killed compiler can leave a truncated object
    # newer than its source, which make would then take as up to date.
    marker = out / INCOMPLETE_MARKER
    marker.touch()
    res = run(argv, cwd=out, log_path=log_path, extra_env=benv.env(), timeout=timeout, on_line=collect)
    if not res.timed_out:
        marker.unlink(missing_ok=True)
    warnings, errors = scan_build_log(lines)
    reproduce = cmdline.shell_line(argv, cwd=out, env={k: v for k, v in benv.env().items()
                                                       if k.startswith("CCACHE")})
    image = out / IMAGE_REL
    if not res.ok:
        if res.timed_out:
            errors = (f"build timed out after {timeout:g}s", *errors)
        if not errors:
            errors = tuple(lines[-FIRST_ERRORS:])
        return BuildResult(BuildStatus.FAILED, res.duration, warnings, errors, None, None,
                           _s(log_path), reproduce)
    size = image.stat().st_size if image.is_file() else None
    return BuildResult(BuildStatus.OK, res.duration, warnings, (), str(image) if size else None,
                       size, _s(log_path), reproduce)


def discard_if_interrupted(out: Path) -> bool:
    """Remove build directory ``out`` if its last build was killed; True if it was."""
    if (out / INCOMPLETE_MARKER).exists():
        log.warning("build in %s was interrupted; starting that directory afresh", out)
        shutil.rmtree(out)
        return True
    return False


def ccache_stats(ccache_dir: Path) -> dict[str, int]:
    """Hit and miss counters of a ccache directory (best effort; {} if unreadable)."""
    if shutil.which("ccache") is None:
        return {}
    res = run(["ccache", "--print-stats"], capture=True, timeout=30,
              extra_env={"CCACHE_DIR": str(ccache_dir)})
    stats: dict[str, int] = {}
    for line in res.stdout.splitlines():
        key, _, value = line.partition("\t")
        if value.strip().isdigit():
            stats[key] = int(value)
    return stats


def hit_rate(before: Mapping[str, int], after: Mapping[str, int]) -> float | None:
    """Fraction of cacheable compilations between two `ccache_stats` snapshots that hit."""
    def d(k: str) -> int:
        return after.get(k, 0) - before.get(k, 0)

    hits = d("direct_cache_hit") + d("preprocessed_cache_hit")
    misses = d("cache_miss")
    return hits / (hits + misses) if hits + misses else None
