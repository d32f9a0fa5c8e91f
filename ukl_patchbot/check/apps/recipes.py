"""The real programs the app stage knows, as data: source package, build, files, proof.

One record per program. The build is the program's own ``configure`` with
build-time defaults that make it run with no arguments (the UKL kernel starts
the application with its name as the only argument; classic runs /init
alike), and with every module that needs a library other than libc switched
off, so the static link needs only glibc.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ukl_patchbot.core.errors import UserError

DATA_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class AppRecipe:
    name: str
    source_package: str             # Debian source package (fetched with apt-get source)
    configure: tuple[str, ...]      # arguments of ./configure, before the compiler flags
    cc_opt: str                     # configure option taking extra compiler flags
    ld_opt: str                     # configure option taking extra linker flags
    program: str                    # the linked executable, relative to the source tree
    objects: str                    # glob of the program's own objects, relative to the tree
    files: tuple[tuple[str, str], ...]  # (file under apps/<name>/, path in the initramfs)
    proof_path: str                 # initramfs path of the generated file the check requests
    proof_size: int                 # its size in bytes
    url_path: str                   # the request for it
    guest_port: int                 # where the program listens in the guest
    kconfig_fragment: str           # under kconfigs/: what the kernel needs for it
    recipe_version: str = "1"       # bump when the build below changes

    @property
    def data_dir(self) -> Path:
        return DATA_DIR / self.name


NGINX = AppRecipe(
    name="nginx",
    source_package="nginx",
    configure=(
        # Defaults that make plain `nginx` read its config from the initramfs.
        "--prefix=/", "--sbin-path=/nginx", "--conf-path=/etc/nginx.conf",
        "--error-log-path=stderr", "--pid-path=/nginx.pid", "--lock-path=/nginx.lock",
        "--http-log-path=/access.log", "--http-client-body-temp-path=/nginx-body",
        "--user=nobody", "--group=nogroup",
        # Only libc: no PCRE (rewrite), no zlib (gzip), no OpenSSL; no threads, no aio.
        "--without-pcre", "--without-http_rewrite_module", "--without-http_gzip_module",
        # Proxying modules need temporary directories and upstreams the check has not.
        "--without-http_proxy_module", "--without-http_fastcgi_module",
        "--without-http_uwsgi_module", "--without-http_scgi_module",
        "--without-http_grpc_module", "--without-http_memcached_module", "--without-http-cache",
        # Basic authentication calls crypt_r (libcrypt), which the UKL link has not.
        "--without-http_auth_basic_module",
        # epoll only: the event method under test.
        "--without-select_module", "--without-poll_module",
    ),
    cc_opt="--with-cc-opt",
    ld_opt="--with-ld-opt",
    program="objs/nginx",
    objects="objs/**/*.o",
    files=(("nginx.conf", "etc/nginx.conf"), ("passwd", "etc/passwd"), ("group", "etc/group")),
    proof_path="www/proof.bin",
    proof_size=200_000,  # several sendfile() chunks and TCP segments
    url_path="/proof.bin",
    guest_port=80,
    kconfig_fragment="net.config",
)

RECORDS: tuple[AppRecipe, ...] = (NGINX,)
NAMES: tuple[str, ...] = tuple(r.name for r in RECORDS)


def get(name: str) -> AppRecipe:
    """The recipe of program ``name``; an unknown name is the caller's input error."""
    for r in RECORDS:
        if r.name == name:
            return r
    raise UserError(f"unknown program {name!r}", hint=f"use one of {', '.join(NAMES)}")
