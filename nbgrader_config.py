"""nbgrader configuration for the course (instructors' and self-learners' grading).

nbgrader reads this file from the working directory and from
CourseDirectory.root; `ketamine-grade` reads it too (with the user's own
nbgrader config first, as nbgrader does), so every way of grading uses the
settings below. Paths are relative to this file, so the repository can live
anywhere.
"""

import sys
from pathlib import Path

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)

c.CourseDirectory.root = str(Path(__file__).resolve().parent)

# Per-cell time limit while grading. nbgrader 0.9 ignores ExecutePreprocessor.timeout
# once Execute.timeout is set anywhere, so set this one.
c.Execute.timeout = 30
c.Execute.interrupt_on_timeout = True

# What a late submission costs (after its quiz's due date, which `nbgrader db assignment add QUIZ
# --duedate="2026-12-20 17:00:00 UTC"` sets): "none" records and shows how late it is and takes
# nothing off; "zero" scores it 0. nbgrader applies it when it grades; the export subtracts it.
c.LateSubmissionPlugin.penalty_method = "none"

# The grading pipeline (ketamine_course.grading): hidden tests judged in the grader's
# process, never in the student's kernel; every kernel sandboxed with limits for the whole
# kernel (c.BoundedExecute.*); submissions checked for links and size before anything
# reads them; a tamper report; graded notebooks and feedback pages made inert.
# If anything here fails, nbgrader would drop this whole file and grade with its defaults (student code
# unsandboxed, hidden tests in the kernel). So a failure is caught and turned into a pipeline that refuses
# to grade anyone, loudly.
try:
    from ketamine_course.grading.config import COURSE_ID, apply_pipeline, exchange_root

    c.CourseDirectory.course_id = COURSE_ID
    # The exchange every user of this machine (or hub) shares: nbgrader's default folder, which an
    # administrator makes once (see README.md, Instructors); KETAMINE_EXCHANGE names another one
    # (a shared volume on Kubernetes, a test's own folder).
    c.Exchange.root = exchange_root()
    apply_pipeline(c)
except Exception as error:
    print(f"[ketamine-grade | ERROR] the course's grading pipeline could not be set up ({type(error).__name__}: {error}); "
          "nothing will be graded until this is fixed", file=sys.stderr)
    c.Autograde.sanitize_preprocessors = ["ketamine_course.grading.config.GRADING_PIPELINE_FAILED_TO_LOAD"]
    c.Autograde.autograde_preprocessors = ["ketamine_course.grading.config.GRADING_PIPELINE_FAILED_TO_LOAD"]
