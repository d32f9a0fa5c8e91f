"""`patchbot build`: configure and build one kernel variant of a given tree, out of tree."""

from __future__ import annotations

import argparse
from pathlib import Path

from ukl_patchbot.check import variant_records


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "build", help="configure and build one kernel variant of a source tree",
        description="tinyconfig + kconfigs/base.config + kconfigs/<variant>.config, merged with "
        "the kernel's merge_config.sh; fails naming any option that did not survive; then "
        "make bzImage out of tree. For reproducing a failed check by hand.",
    )
    p.add_argument("--src", type=Path, required=True, help="Linux source tree (left untouched)")
    p.add_argument("--variant", choices=variant_records.NAMES,
                   default=variant_records.with_role(variant_records.Role.BASELINE).name)
    p.add_argument("--out", type=Path, required=True, help="build directory (O=)")
    p.add_argument("--ukl-archive", type=Path, metavar="PATH",
                   help="UKL application object (sets CONFIG_UKL_ARCHIVE)")
    p.add_argument("--kconfigs", type=Path, help="fragment directory (default: kconfigs/ of the "
                   "checkout)")
    p.add_argument("-j", "--jobs", type=int, default=2)
    p.add_argument("--no-ccache", action="store_true", help="compile without ccache")
    p.set_defaults(func=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    from ukl_patchbot.check import kbuild, variants
    from ukl_patchbot.core import config
    from ukl_patchbot.core.errors import UserError

    kdir = args.kconfigs or config.find_root() / "kconfigs"
    spec = variants.spec_for(args.variant, kdir, ukl_archive=args.ukl_archive)
    if not spec.fragments:
        raise UserError(f"no kconfig fragments for {args.variant} in {kdir}")
    kbuild.require_tools(list(kbuild.BUILD_TOOLS), kbuild.BUILD_HEADERS)
    out = args.out.resolve()
    ccache = None if args.no_ccache else config.default_cache_dir() / "ccache"
    ws = variants.Workspace(out.parent, args.src.resolve(), ccache, args.jobs)
    benv = ws.benv()
    logs = out.parent
    cfg_res = kbuild.configure(args.src, out, spec.fragments, extra=spec.extra, benv=benv,
                               log_path=logs / f"config-{args.variant}.log")
    if not cfg_res.ok:
        print(f"config {cfg_res.status}: " + ", ".join(
            f"{d.name} (asked {d.requested} by {d.fragment}, got {d.actual})"
            for d in cfg_res.dropped))
        for line in cfg_res.error_lines:
            print("  " + line)
        return 2
    b = kbuild.build(args.src, out, benv=benv, log_path=logs / f"build-{args.variant}.log")
    print(f"build {b.status} in {b.duration:.1f}s, {b.warnings} warnings; log: {b.log_path}")
    for line in b.first_errors:
        print("  " + line)
    if b.image:
        print(f"image: {b.image} ({b.image_size} bytes)")
    return 0 if b.ok else 2
