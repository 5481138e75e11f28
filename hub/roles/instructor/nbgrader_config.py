"""An instructor's nbgrader on the course's hub: the course's own nbgrader_config.py, from the instructor's copy of the course.

That copy is ~/ketamine-course unless KETAMINE_COURSE_ROOT names another folder; the formgrader,
nbgrader's commands and ketamine-grade then all grade the same course with the same pipeline.
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)
course = Path(os.environ.get("KETAMINE_COURSE_ROOT", Path.home() / "ketamine-course"))
if (course / "nbgrader_config.py").is_file():
    load_subconfig(str(course / "nbgrader_config.py"))  # noqa: F821
