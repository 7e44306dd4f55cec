"""Maintainer tooling of the course, kept out of the installed ``helpers`` package.

Run from the repository root (nothing here is imported by the notebooks):

- ``python -m tools.notebook_tools``: execute notebooks deterministically, sync setup cells;
- ``python -m tools.handouts``: offline HTML handouts and slide decks (JavaScript in ``tools/vendor``);
- ``python -m tools.student``: the student edition (nbgrader's release with ``tools/nbgrader_config.py``);
- ``python -m tools.hub``: the hub's and Binder's pinned learner set, nbgitpuller links;
- ``python -m tools.torch_index``: the index pip takes torch from (CPU build on Linux without a GPU);
- ``python -m tools.course``: the course table (``notebooks/course.toml``) and what is generated from it;
- ``tools/colab_setup.py``: run by the notebooks' setup cell on Colab (standard library and
  ``packaging``, which Colab ships).
"""
