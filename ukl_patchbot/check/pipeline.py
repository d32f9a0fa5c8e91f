"""The one pipeline behind `patchbot check`, the worker and the weekly job.

upstream tag -> rebase linux and glibc series -> patched glibc and the probe
-> build classic and UKL -> boot both -> report (JSON, Markdown, logs in one
output directory per run). A finished check is cached under a key of all its
inputs, so asking again with nothing changed answers from the cache.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ukl_patchbot.check import kbuild, runfiles, uklapp, userland, variant_records, variants
from ukl_patchbot.check import report as cr
from ukl_patchbot.check.boot import QEMU, detect_accel
from ukl_patchbot.check.report import CheckReport, PatchRow, RebaseSummary, Verdict
from ukl_patchbot.check.request import CheckRequest
from ukl_patchbot.check.results import AppResult, VariantResult
from ukl_patchbot.check.workspace import check_workspace, export_once
from ukl_patchbot.core import cmdline
from ukl_patchbot.core.cache import ContentCache, cache_key, hash_files
from ukl_patchbot.core.config import Config
from ukl_patchbot.core.errors import PatchbotError, UserError
from ukl_patchbot.core.fsutil import atomic_write
from ukl_patchbot.core.progress import Progress
from ukl_patchbot.rebase import request as rebase_request

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the whole ukl_patchbot package
SOURCE_SUFFIXES = (".py", ".c", ".h", ".S", ".lds", ".config", ".toml")


def summarize_rebase(report: Any) -> RebaseSummary:
    """The per-patch table of a `rebase_report.RebaseReport` for the check report."""
    from ukl_patchbot.rebase import report as rebase_report

    rows = []
    for p in report.patches:
        detail = p.detail or ", ".join(p.conflict_files)
        if not detail and p.hunks:
            moved = [f"{h.file} {h.offset:+d}" for h in p.hunks if h.offset]
            detail = "; ".join(dict.fromkeys(moved))  # one entry per file and offset
        rows.append(PatchRow(p.name, str(p.status), detail))
    return RebaseSummary(report.component, report.old_base, report.new_base, report.ok,
                         tuple(rows), report.range_diff, report.applied_ref,
                         rebase_report.summary_line(report))


def _rebase(cfg: Config, component: str, tag: str, out_dir: Path,
            progress: Progress) -> tuple[Any, RebaseSummary]:
    """Rebase one series (without writing it) as a progress step; reports go to ``out_dir``."""
    from ukl_patchbot.rebase import engine as rebase
    from ukl_patchbot.rebase import report as rebase_report

    name = f"rebase {component} {tag}"
    progress.step(name)
    rep = rebase.rebase_series(cfg, component, tag, write=False)
    atomic_write(out_dir / f"rebase-{component}.json", rebase_report.render_json(rep))
    atomic_write(out_dir / f"rebase-{component}.md", rebase_report.render_markdown(rep))
    summary = summarize_rebase(rep)
    progress.finish(name, "ok" if summary.ok else "conflict", rep.duration)
    return rep, summary


def _tree_id(cfg: Config, component: str, ref: str) -> str:
    from ukl_patchbot.upstream import gitops

    return gitops.out(cfg.mirror_dir(component), "rev-parse", f"{ref}^{{tree}}")


def newest_tag(cfg: Config, component: str) -> str:
    from ukl_patchbot.upstream import mirror as upstream

    tags = upstream.list_tags(cfg, component)
    if not tags:
        raise UserError(f"the {component} mirror has no tags",
                        hint=f"run `patchbot upstream sync {component}` first")
    return tags[0]


def _glibc_tag(cfg: Config, requested: str | None) -> str:
    from ukl_patchbot.upstream import mirror as upstream

    if requested:
        return requested
    return upstream.series_base(cfg.component("glibc")) or newest_tag(cfg, "glibc")


def _sources(d: Path) -> dict[str, Path]:
    # Sources only: __pycache__ changes whenever Python compiles a module.
    return {f"{d.name}/{p.relative_to(d)}": p for p in sorted(d.rglob("*"))
            if p.is_file() and p.suffix in SOURCE_SUFFIXES and "__pycache__" not in p.parts}


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """Our package (code and probe source) as this process loaded it.

    Hashed once per process: the code that runs is the code that was
    imported, even if someone edits the files meanwhile.
    """
    return hash_files(_sources(PACKAGE_DIR))


def source_hash(cfg: Config) -> str:
    """Everything in this checkout that shapes a result: our code, kconfigs, the probe."""
    kconfigs = cfg.root / "kconfigs"
    files = _sources(kconfigs) if kconfigs.is_dir() else {}
    return cache_key("sources", {"code": code_hash(), "kconfigs": hash_files(files)})


def _qemu_version() -> str:
    from ukl_patchbot.core.runner import run

    res = run([QEMU, "--version"], capture=True, timeout=30)
    return res.stdout.splitlines()[0] if res.ok and res.stdout else "unknown"


def _write_report(report: CheckReport, out_dir: Path) -> None:
    atomic_write(out_dir / "report.json", cr.render_json(report))
    atomic_write(out_dir / "report.md", cr.render_markdown(report))


def _load_cached(path: Path) -> CheckReport | None:
    """A cached report, or None if it is unreadable (e.g. written by an older schema)."""
    try:
        report = cr.report_from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable cached check %s: %s", path, exc)
        return None
    return report if report.schema == cr.SCHEMA_VERSION else None


def _needs_glibc(names: tuple[str, ...]) -> bool:
    """Whether one of the variants ``names`` builds the patched glibc (the glibc series)."""
    return any(variant_records.get(v).needs_glibc_series for v in names)


def _app_inputs(app: str | None) -> dict[str, str] | None:
    """The real program's name and its files (config, users), for the check's cache key.

    The files have no source suffix, so `source_hash` does not see them.
    """
    if app is None:
        return None
    from ukl_patchbot.check.apps import recipes

    d = recipes.get(app).data_dir
    return {"name": app, "files": hash_files({p.name: p for p in d.iterdir() if p.is_file()})}


def run_check(cfg: Config, req: CheckRequest, *, progress: Progress | None = None) -> CheckReport:
    """Rebase, build, boot and report one upstream tag. Failures are in the report."""
    progress = progress or Progress()
    started = time.monotonic()
    kbuild.require_tools([*kbuild.BUILD_TOOLS, QEMU, "cpio"], kbuild.BUILD_HEADERS)
    variants.profile_fragment(cfg.root / "kconfigs", req.profile)  # a bad name fails first
    tag = req.tag or newest_tag(cfg, "linux")
    cfg = cfg.for_tag("linux", tag)  # the tag's line picks the Linux series
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = (req.out_dir or cfg.cache_dir / "runs" / f"{tag}-{stamp}").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    glibc_tag = _glibc_tag(cfg, req.glibc_tag) if _needs_glibc(req.variants) else None
    repro = req.reproduce(tag, glibc_tag)
    cmdline.write_reproducer(out_dir, [repro])

    def finish(report: CheckReport) -> CheckReport:
        report = replace(report, out_dir=str(out_dir), duration=time.monotonic() - started)
        _write_report(report, out_dir)
        return report

    linux_rep, linux_sum = _rebase(cfg, "linux", tag, out_dir, progress)
    if not linux_sum.ok or linux_rep.applied_ref is None:
        verdict, attribution, text = cr.attribute((), linux_sum, tag)
        return finish(CheckReport("linux", tag, verdict, attribution, text, (), linux_sum,
                                  glibc_tag, None, None, repro))
    tree_id = _tree_id(cfg, "linux", linux_rep.applied_ref)

    glibc_ref = glibc_tree = None
    if glibc_tag is not None:
        g_rep, g_sum = _rebase(cfg, "glibc", glibc_tag, out_dir, progress)
        if not g_sum.ok or g_rep.applied_ref is None:
            verdict, attribution, text = cr.attribute((), g_sum, glibc_tag)
            return finish(CheckReport("linux", tag, verdict, attribution, text, (), g_sum,
                                      glibc_tag, tree_id, None, repro))
        glibc_ref, glibc_tree = g_rep.applied_ref, _tree_id(cfg, "glibc", g_rep.applied_ref)

    accel = detect_accel()
    check_cache = ContentCache(cfg.cache_dir / "checks")
    key = cache_key("check", {"linux": tree_id, "glibc": glibc_tree, "variants": list(req.variants),
                              "src": source_hash(cfg), "gcc": variants.toolchain_id(),
                              "qemu": _qemu_version(), "accel": accel,
                              "timeout": req.boot_timeout, "profile": req.profile,
                              "app": _app_inputs(req.app)})
    hit = check_cache.get(key) if req.use_cache else None
    cached = _load_cached(hit / "report.json") if hit is not None else None
    if cached is not None and hit is not None:
        progress.finish("check", "answered from cache", time.monotonic() - started)
        runfiles.restore(hit, out_dir)
        return finish(replace(cached, from_cache=True, rebase=linux_sum, reproduce=repro))

    results, apps = _build_and_boot(cfg, req, (linux_rep.applied_ref, tree_id),
                                    (glibc_ref, glibc_tree), out_dir, progress)
    verdict, attribution, text = cr.attribute_apps(cr.attribute(results, linux_sum, tag), apps)
    notes = _explain_build_errors(cfg, tag, linux_rep.old_base, results)
    report = finish(CheckReport("linux", tag, verdict, attribution, text, results, linux_sum,
                                glibc_tag, tree_id, cr.syscall_ratio(results), repro,
                                accel=accel, notes=tuple(notes), apps=apps))
    if report.verdict != Verdict.ERROR:
        with check_cache.put(key) as stage:
            (stage / "report.json").write_text(cr.render_json(report))
            runfiles.keep(out_dir, stage)
    return report


def _build_and_boot(cfg: Config, req: CheckRequest, linux: tuple[str, str],
                    glibc: tuple[str | None, str | None], out_dir: Path, progress: Progress
                    ) -> tuple[tuple[VariantResult, ...], tuple[AppResult, ...]]:
    """Export the rebased tree, build each variant's userland, then build and boot the kernels.

    ``linux`` and ``glibc`` are (applied ref, tree id) of the rebased trees.
    The results come in the order of ``req.variants``; then, with ``req.app``,
    the real program's result in each of them.
    """
    from ukl_patchbot.check import workspace

    (linux_ref, tree_id), (glibc_ref, glibc_tree) = linux, glibc
    with workspace.locked(cfg, req.jobs) as ws:
        progress.step("export linux tree")
        t0 = time.monotonic()
        how = export_once(cfg, "linux", linux_ref, tree_id, ws.src)
        progress.finish("export linux tree", how, time.monotonic() - t0)
        arts, failed = userland.build(cfg, ws, glibc_ref, glibc_tree, out_dir, req.variants,
                                      progress)
        specs = tuple(variants.spec_for(v, cfg.root / "kconfigs", initrd=arts.get("initrd"),
                                        data_initrd=arts.get("data_initrd"),
                                        ukl_archive=arts.get("ukl_archive"), profile=req.profile)
                      for v in req.variants if v not in failed)
        images = ContentCache(cfg.cache_dir / "kernels")
        done = variants.check_variants(ws.src, tree_id, specs, ws, images, out_dir, progress,
                                       boot_timeout=req.boot_timeout, retries=req.retries)
        by_name = {v.variant: v for v in done} | failed
        results = tuple(by_name[v] for v in req.variants)
        apps: tuple[AppResult, ...] = ()
        if req.app is not None:
            from ukl_patchbot.check.apps import stage

            inputs = stage.StageInputs(cfg.root / "kconfigs", cfg.cache_dir, tree_id, glibc_tree,
                                       max(req.boot_timeout, stage.DEFAULT_TIMEOUT), req.retries,
                                       req.profile)
            apps = stage.run_stage(req.app, ws, results, inputs, out_dir, progress)
    return results, apps


def _explain_build_errors(cfg: Config, tag: str, old_base: str,
                          results: tuple[VariantResult, ...]) -> list[str]:
    """Build errors next to the series patch and the upstream change (old base -> tag) behind them."""
    from ukl_patchbot.rebase import explain
    from ukl_patchbot.series import lines

    notes: list[str] = []
    for v in results:
        if v.build.status != kbuild.BuildStatus.FAILED or not v.build.first_errors:
            continue
        try:
            series = lines.choose_source(cfg, "linux", tag).series
            found = explain.explain(cfg.mirror_dir("linux"), series, old_base, tag,
                                    v.build.first_errors)
        except PatchbotError as exc:
            log.warning("could not explain the %s build errors: %s", v.variant, exc)
            continue
        if found:
            notes.append(f"{v.variant} build errors explained:\n"
                         + "\n".join(explain.render_markdown(found, old_base, tag)))
    return notes


def plan(cfg: Config, req: CheckRequest) -> list[str]:
    """The commands a check would run, for ``--dry-run`` (nothing is run or written)."""
    from ukl_patchbot.check.boot import qemu_argv

    tag = req.tag or newest_tag(cfg, "linux")
    cfg = cfg.for_tag("linux", tag)  # the tag's line picks the Linux series
    ws = check_workspace(cfg, req.jobs)
    benv = ws.benv()
    env = benv.env()
    details = rebase_request.reproduce(tag, dry_run=True)
    lines = [f"# rebase the linux series onto {tag} (details: {details})",
             f"# export the rebased tree to {ws.src}",
             f"# write the probe's data files ({', '.join(uklapp.probe_data_files())}) into "
             f"the initramfs of each variant under {ws.root / 'probe'}"]
    if _needs_glibc(req.variants):
        lines.append(f"# rebase the glibc series onto {_glibc_tag(cfg, req.glibc_tag)}, build the "
                     f"UKL glibc and the probe under {ws.root}")
    for v in req.variants:
        spec = variants.spec_for(v, cfg.root / "kconfigs",
                                 initrd=ws.root / "probe" / userland.INIT_INITRD,
                                 data_initrd=ws.root / "probe" / userland.DATA_INITRD,
                                 profile=req.profile)
        out = ws.build_dir(v, req.profile)
        frags = list(spec.fragments)
        option = variant_records.get(v).archive_option
        if option is not None:
            frags.append(out / kbuild.EXTRA_FRAGMENT)
            lines.append(f"# {out / kbuild.EXTRA_FRAGMENT}: {option}=<probe object>")
        for argv in kbuild.configure_commands(ws.src, out, frags, benv):
            lines.append(cmdline.shell_line(argv, cwd=out, env=env))
        lines.append(cmdline.shell_line(kbuild.build_command(ws.src, out, benv), cwd=out, env=env))
        lines.append(cmdline.shell_line(qemu_argv(out / kbuild.IMAGE_REL, spec.initrd, accel="tcg")))
    if req.app is not None:
        from ukl_patchbot.check.apps import recipes

        recipe = recipes.get(req.app)
        lines.append(f"# then {recipe.name}: apt-get source {recipe.source_package} (deb-src "
                     f"derived from /etc/apt), build it per variant, rebuild each kernel with "
                     f"kconfigs/{recipe.kconfig_fragment}, boot it with a NIC and "
                     f"GET {recipe.url_path} from the host")
    return lines
