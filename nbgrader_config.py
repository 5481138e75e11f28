"""nbgrader configuration for the course (instructors' and self-learners' grading).

nbgrader reads this file from the working directory and from
CourseDirectory.root. Paths are relative to this file, so the repository can
live anywhere. The same settings are built for nbgrader's in-process API by
ketamine_course.grading.grading_config.
"""

from pathlib import Path

from ketamine_course.grading import autograde_preprocessors, feedback_preprocessors, sanitize_preprocessors

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)

c.CourseDirectory.course_id = "ketamine-course"
c.CourseDirectory.root = str(Path(__file__).resolve().parent)

# Per-cell time limit while grading. nbgrader 0.9 ignores ExecutePreprocessor.timeout
# once Execute.timeout is set anywhere, so set this one.
c.Execute.timeout = 30
c.Execute.interrupt_on_timeout = True

# Hidden tests are judged in the grader's process, never in the student's kernel
# (see ketamine_course.grading): answers are recorded before execution and judged after.
c.Autograde.autograde_preprocessors = autograde_preprocessors()

# Every autograde run reports submissions whose graded or locked cells were edited, deleted,
# duplicated or stripped of their metadata (logged, and written to reports/tamper/).
c.Autograde.sanitize_preprocessors = sanitize_preprocessors()

# Feedback never shows hidden tests.
c.GenerateFeedback.preprocessors = feedback_preprocessors()
c.ClearHiddenTests.enforce_metadata = True
