"""nginx from Debian's source, built by the pipeline, as the real program of both variants.

Slow: fetches the nginx source package through the derived deb-src
configuration (about 1 MB, once: cached by version under
$PATCHBOT_APP_CACHE, default <test cache>/apps), builds it twice (about a
minute and a half each on 2 cores, once: cached by content), and builds one
classic kernel with kconfigs/net.config on the Linux base tag (a cold build:
2-3 minutes on an idle machine, no ccache shared with other tests).
The classic boot is judged by the document nginx serves to a request from
the host. The UKL object is linked and checked; the UKL boot waits for the
kernel side (the whole system-call table, a data initramfs).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import realtrees, ukl_builds
from ukl_patchbot.check import uklapp, variants
from ukl_patchbot.check.apps import build, recipes, stage
from ukl_patchbot.check.glibc import GlibcBuild
from ukl_patchbot.check.results import (
    AppStatus,
    BootResult,
    BootStatus,
    BuildResult,
    BuildStatus,
    ConfigResult,
    ConfigStatus,
    VariantResult,
)
from ukl_patchbot.check.variant_records import Userland
from ukl_patchbot.core.progress import Progress
from ukl_patchbot.upstream import debsrc, gitops

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
NGINX = recipes.NGINX


def app_cache() -> Path:
    """Sources and program builds kept between runs (content-keyed, safe to share)."""
    return Path(os.environ.get("PATCHBOT_APP_CACHE", str(realtrees.test_cache_dir() / "apps")))


def _passed(name: str) -> VariantResult:
    """A variant that passed its own probe check: the app stage runs only after one."""
    return VariantResult(name, ConfigResult(ConfigStatus.OK), BuildResult(BuildStatus.OK),
                         BootResult(BootStatus.PASS))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A patchbot cache whose apps/ is the persistent one; kernels and the rest are fresh."""
    root = tmp_path_factory.mktemp("cache")
    app_cache().mkdir(parents=True, exist_ok=True)
    (root / "apps").symlink_to(app_cache())
    return root


@pytest.fixture(scope="module")
def nginx_source(cache: Path) -> debsrc.SourceTree:
    return debsrc.fetch_source(NGINX.source_package, cache / "apps",
                               log_path=cache / "fetch.log")


def test_source_comes_from_the_derived_deb_src_list(nginx_source: debsrc.SourceTree,
                                                     cache: Path) -> None:
    derived = (cache / "apps" / "apt" / "sources.list.d" / "derived-deb-src.sources").read_text()
    machine = debsrc.read_system_sources()
    assert machine and all(e.uri in derived for e in machine)
    assert (nginx_source.path / "src" / "core" / "nginx.c").is_file()
    assert nginx_source.dsc.is_file() and nginx_source.version.startswith("1.")
    # A second fetch is answered from the cache: no download.
    again = debsrc.fetch_source(NGINX.source_package, cache / "apps")
    assert again.path == nginx_source.path and again.fetch_seconds == 0.0


def test_classic_kernel_boots_nginx_and_it_answers_from_the_host(
        linux_base_tree: Path, nginx_source: debsrc.SourceTree, cache: Path,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp("classic-nginx")
    ws = variants.Workspace(work / "ws", linux_base_tree, work / "ccache")
    inputs = stage.StageInputs(REPO / "kconfigs", cache, "tree-base", None, boot_timeout=120)
    (res,) = stage.run_stage("nginx", ws, (_passed("classic"),), inputs, work / "out",
                             Progress())
    assert res.status is AppStatus.PASS, (res.detail, res.tail, res.kernel.first_errors)
    assert res.version == nginx_source.version
    assert res.answer_after is not None and res.answer_after < 120
    assert "byte for byte" in res.detail
    assert res.kernel.ok and res.kernel.image is not None
    config = (Path(res.kernel.image).parent / "config").read_text()
    assert "CONFIG_VIRTIO_NET=y" in config and "CONFIG_IP_PNP=y" in config
    log = Path(str(res.log_path)).read_text()
    assert 'using the "epoll" event method' in log  # nginx's own start-up notice
    assert "IP-Config: Complete" in log  # the kernel set the address before PID 1
    # The same static program, built once: the stage took it from the cache.
    prog = build.build_program(NGINX, nginx_source, Userland.STOCK_STATIC,
                               cache / "apps" / "build")
    headers = subprocess.run(["readelf", "-l", prog.artifact], capture_output=True, text=True,
                             check=True).stdout
    assert prog.cached and "LOAD" in headers and "INTERP" not in headers  # static


@pytest.fixture(scope="module")
def ukl_glibc(real_config, glibc_mirror, tmp_path_factory) -> GlibcBuild:  # type: ignore[no-untyped-def]
    """The UKL glibc, content-cached (tests/helpers/ukl_builds.py)."""
    return ukl_builds.ukl_glibc(real_config, tmp_path_factory)


def test_ukl_nginx_links_into_an_application_object_without_syscall(
        nginx_source: debsrc.SourceTree, cache: Path, ukl_glibc: GlibcBuild,
        tmp_path: Path) -> None:
    prog = build.build_program(NGINX, nginx_source, Userland.LINKED_APP,
                               cache / "apps" / "build", log_path=tmp_path / "build.log")
    # The program itself reaches the kernel only through glibc: sockets, epoll, sendfile.
    undefined = subprocess.run(["nm", "-u", prog.artifact], capture_output=True, text=True,
                               check=True).stdout.split()
    # (nginx builds with 64-bit file offsets: glibc's headers name the *64 entry points.)
    for call in ("socket", "bind", "listen", "accept4", "epoll_create", "epoll_wait",
                 "epoll_ctl", "sendfile64", "open64", "fstat64"):
        assert call in undefined, call
    assert uklapp.find_syscall_instructions(prog.artifact) == []
    app = uklapp.link_application([prog.artifact], ukl_glibc, tmp_path / "nginx-app.o",
                                  log_path=tmp_path / "link.log")
    assert uklapp.find_syscall_instructions(app) == []
    symbols = subprocess.run(["nm", app], capture_output=True, text=True, check=True).stdout
    assert " T ukl_app_main\n" in symbols and "ukl_app_ngx_epoll_module" in symbols


@pytest.mark.skipif(os.environ.get("PATCHBOT_UKL_APP") != "1",
                    reason="set PATCHBOT_UKL_APP=1: two more cold kernel builds (about 20 min "
                           "here), kept out of the default suite's time")
def test_ukl_kernel_runs_nginx_and_it_answers(real_config, linux_mirror, ukl_glibc,  # type: ignore[no-untyped-def]
                                              nginx_source, cache, tmp_path_factory) -> None:
    tag = realtrees.linux_base_tag()
    ref, tree = ukl_builds.applied(real_config, "linux", tag)
    work = tmp_path_factory.mktemp("ukl-nginx")
    src = gitops.export_tree(real_config.mirror_dir("linux"), ref, work / "src")
    ws = variants.Workspace(work / "ws", src, work / "ccache")
    glibc_cache = cache / "glibc"
    glibc_cache.mkdir(exist_ok=True)
    if not (glibc_cache / ukl_glibc.root.name).exists():
        (glibc_cache / ukl_glibc.root.name).symlink_to(ukl_glibc.root)
    inputs = stage.StageInputs(REPO / "kconfigs", cache, tree,
                               (ukl_glibc.root / "DONE").read_text().strip(), boot_timeout=180)
    results = stage.run_stage("nginx", ws, (_passed("classic"), _passed("ukl")), inputs,
                              work / "out", Progress())
    assert [r.status for r in results] == [AppStatus.PASS, AppStatus.PASS], \
        [(r.variant, r.detail, r.tail) for r in results]

