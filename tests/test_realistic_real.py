"""The realistic kernel configuration (kconfigs/profile-realistic.config), both variants, real trees.

Closer to a distribution kernel than tinyconfig: SMP, PREEMPT, jump labels,
BLOCK, retpolines and return thunks, kernel IBT. The review's defects that
tinyconfig could not see show here: with BLOCK=y a kernel without /init
used to look for a root file system and panic (UKL now does not), and the
UKL configuration must come out with IBT off while classic keeps it.

Slow: one realistic build per variant of the newest 6.1 tag (reuses the
test cache's glibc and ccache).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import realtrees
from tests.helpers.ukl_builds import checkout
from ukl_patchbot.check import kbuild, pipeline
from ukl_patchbot.check import report as cr
from ukl_patchbot.check.report import Verdict

TAG = realtrees.linux_new_tag()

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def realistic(real_config, linux_mirror, glibc_mirror, tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("realistic")
    cfg = checkout(real_config, root / "co")
    report = pipeline.run_check(cfg, pipeline.CheckRequest(tag=TAG, out_dir=root / "run",
                                                           profile="realistic"))
    return report


def test_both_variants_pass_with_every_abi_check(realistic) -> None:  # type: ignore[no-untyped-def]
    assert realistic.verdict == Verdict.PASS, cr.render_markdown(realistic)
    for v in realistic.variants:
        a = v.boot.decisive
        assert a is not None and a.markers.cpl == (0 if v.variant == "ukl" else 3)
        assert a.markers.abi and all(c.status == "ok" for c in a.markers.abi), a.markers.abi


def test_configs_are_the_realistic_ones_and_ukl_has_no_ibt(realistic) -> None:  # type: ignore[no-untyped-def]
    out = Path(realistic.out_dir)
    final = {v: kbuild.parse_config((out / f"config-{v}").read_text()) for v in ("classic", "ukl")}
    for v in ("classic", "ukl"):
        for opt in ("CONFIG_BLOCK", "CONFIG_PREEMPT", "CONFIG_SMP", "CONFIG_JUMP_LABEL",
                    "CONFIG_RETHUNK"):
            assert final[v].get(opt) == "y", (v, opt)
    assert final["classic"].get("CONFIG_X86_KERNEL_IBT") == "y"
    assert final["ukl"].get("CONFIG_X86_KERNEL_IBT", "n") == "n"
    assert final["ukl"].get("CONFIG_UNIKERNEL_LINUX") == "y"
