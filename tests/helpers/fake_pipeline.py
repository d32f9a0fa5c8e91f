"""A stand-in for `ukl_patchbot.dispatch.execute.execute_job`, for workers started as subprocesses.

Steered by the environment: ``PATCHBOT_TEST_RUNS`` (a directory where each
start and finish leaves a file), ``PATCHBOT_TEST_MODE`` (``ok``,
``crash-always``: the process kills itself with SIGKILL mid job) and
``PATCHBOT_TEST_SLEEP`` (seconds a job takes).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from ukl_patchbot.core.config import Config
from ukl_patchbot.core.jobs import Conclusion, Job, JobOutcome, StatusLine


def execute(job: Job, cfg: Config) -> JobOutcome:
    runs = Path(os.environ["PATCHBOT_TEST_RUNS"])
    runs.mkdir(parents=True, exist_ok=True)
    (runs / f"start-{job.key}-{os.getpid()}-{time.monotonic_ns()}").write_text(job.component)
    if os.environ.get("PATCHBOT_TEST_MODE") == "crash-always":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(float(os.environ.get("PATCHBOT_TEST_SLEEP", "0")))
    (runs / f"done-{job.key}-{os.getpid()}-{time.monotonic_ns()}").write_text(job.component)
    return JobOutcome(
        job,
        Conclusion.SUCCESS,
        f"{job.component}: both variants boot",
        f"checked by pid {os.getpid()}",
        statuses=(
            StatusLine("patchbot/classic", "success", "booted"),
            StatusLine("patchbot/ukl", "success", "marker seen"),
        ),
    )
