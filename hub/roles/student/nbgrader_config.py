"""A student's nbgrader on the course's hub: the course and the exchange (hub/jupyterhub_config.py sets KETAMINE_EXCHANGE)."""

import os

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)
c.CourseDirectory.course_id = "ketamine-course"
c.Exchange.root = os.environ.get("KETAMINE_EXCHANGE", "/srv/nbgrader/exchange")
