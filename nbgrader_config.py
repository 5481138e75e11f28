"""nbgrader configuration for the course (instructors' and self-learners' grading).

nbgrader reads this file from the working directory and from
CourseDirectory.root. Paths are relative to this file, so the repository can
live anywhere.
"""

from pathlib import Path

from nbgrader.preprocessors import ClearHiddenTests, GetGrades
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)

c.CourseDirectory.course_id = "ketamine-course"
c.CourseDirectory.root = str(Path(__file__).resolve().parent)

# Per-cell time limit while grading. nbgrader 0.9 ignores ExecutePreprocessor.timeout
# once Execute.timeout is set anywhere, so set this one.
c.Execute.timeout = 30
c.Execute.interrupt_on_timeout = True

# Feedback never shows hidden tests.
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]

# The student version keeps hidden tests out.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
