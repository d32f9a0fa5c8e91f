"""`patchbot boot`: boot one kernel image in QEMU and judge it against the probe's markers."""

from __future__ import annotations

import argparse
from pathlib import Path

from ukl_patchbot.check import variant_records


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "boot", help="boot a kernel image in QEMU and check the probe's markers",
        description="Serial console to a log, -no-reboot, panic=-1, a hard timeout; KVM only "
        "when it really works. Passes only on the probe's start marker with the expected "
        "privilege level and its done line, with no ABI check failed.",
    )
    p.add_argument("--kernel", type=Path, required=True, help="bzImage")
    p.add_argument("--initrd", type=Path, help="initramfs: the probe as /init and its data files (classic), "
                   "or only the data files (a variant whose probe is in vmlinux)")
    p.add_argument("--variant", choices=variant_records.NAMES,
                   default=variant_records.with_role(variant_records.Role.BASELINE).name)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument("--retries", type=int, default=0, help="retry a failed boot N times")
    p.add_argument("--out", type=Path, default=Path("."), help="directory for the console logs")
    p.set_defaults(func=cmd_boot)


def cmd_boot(args: argparse.Namespace) -> int:
    from ukl_patchbot.check import boot

    res = boot.boot(args.kernel, args.initrd, args.variant, log_dir=args.out,
                    timeout=args.timeout, retries=args.retries)
    for i, a in enumerate(res.attempts, 1):
        ttm = f"{a.time_to_marker:.2f}s" if a.time_to_marker is not None else "-"
        ns = f"{a.markers.ns_per_call:.1f}" if a.markers.ns_per_call is not None else "-"
        print(f"attempt {i}: {a.status} ({a.accel}, {a.duration:.1f}s, marker after {ttm}, "
              f"getppid {ns} ns/call) log: {a.log_path}")
        for f in a.findings:
            print(f"  {f.fingerprint}: {f.summary}")
    if res.flaky:
        print("flaky: the attempts disagree")
    print(f"boot {res.status}")
    return 0 if res.ok else 2
