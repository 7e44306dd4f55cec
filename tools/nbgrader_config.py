"""nbgrader configuration of the course: its release is the student edition (tools/student.py).

``make student`` builds the edition with it.  An instructor grading with nbgrader loads it from
their own course's ``nbgrader_config.py``, so that ``nbgrader generate_assignment`` releases the
same notebooks, badges and setup cells pointed at the published student edition::

    c = get_config()
    load_subconfig("/path/to/the/course/repository/tools/nbgrader_config.py")
    c.CourseDirectory.course_id = "..."
    # c.StudentEditionLinks.ref = "v0.1.0-student"   # the default: v<version>-student

It replaces the sample answer of each written answer (a markdown cell graded by hand) with
``tools.student.TEXT_STUB``, and it adds one preprocessor to nbgrader's ``generate_assignment``,
after nbgrader's own clear solutions and outputs and before it records checksums:
``tools.student.StudentEditionLinks`` points the "Open in Colab" badges at the tag the edition is
published under and makes the setup cell's Colab clone check that tag out.  The repository folder
is put on ``sys.path`` to import it.
"""

import sys
from pathlib import Path

c = get_config()  # noqa: F821 (nbgrader's configuration loader defines it)

_REPOSITORY = str(Path(__file__).resolve().parent.parent)
if _REPOSITORY not in sys.path:
    sys.path.insert(0, _REPOSITORY)

from nbgrader.converters import GenerateAssignment  # noqa: E402
from nbgrader.preprocessors import ComputeChecksums  # noqa: E402

from tools.student import TEXT_STUB, StudentEditionLinks  # noqa: E402

_steps = list(GenerateAssignment.class_traits()["preprocessors"].default())
_at = _steps.index(ComputeChecksums) if ComputeChecksums in _steps else len(_steps)
c.GenerateAssignment.preprocessors = [*_steps[:_at], StudentEditionLinks, *_steps[_at:]]
c.ClearSolutions.text_stub = TEXT_STUB

# Grading runs every cell: nbgrader's defaults (30 s a cell, 4 s to a cell's first output) fail the
# course's slower cells, or any cell on a busy grading machine.
c.Execute.timeout = 600
c.Execute.iopub_timeout = 120
