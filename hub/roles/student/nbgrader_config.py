"""A student's nbgrader on the course's hub: the course and the exchange (hub/jupyterhub_config.py sets KETAMINE_EXCHANGE).

Both come from ketamine_course.grading.config, which nbgrader_config.py reads too; the student's server runs in the course's .venv.
"""

from ketamine_course.grading.config import COURSE_ID, exchange_root

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)
c.CourseDirectory.course_id = COURSE_ID
c.Exchange.root = exchange_root()
