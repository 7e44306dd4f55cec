"""Helpers for the course *Why deep networks need good initialization and normalization*.

The package is organised after the lecture concepts it serves:

- compute modules return numbers and arrays and never draw: ``helpers.data``,
  ``helpers.initialization`` (the MLPs and their profiles at initialization) with
  ``helpers.initialization_theory`` (the infinite-width predictions) and
  ``helpers.initialization_symmetry`` (training from symmetric initializations),
  ``helpers.drift``, ``helpers.norms``, ``helpers.batch_effects``, ``helpers.attention``,
  ``helpers.attention_training``, ``helpers.gpt2`` (the LayerNorm parameters' statistics) with
  ``helpers.gpt2_hub`` (loading them), ``helpers.transformer`` (the model and the task) with
  ``helpers.transformer_runs`` (training runs and their statistics), ``helpers.training``,
  ``helpers.claims`` and ``helpers.validation`` (the argument checks every module uses);
- ``helpers.plots.<concept>`` draws what the compute modules return;
- ``helpers.widgets.<concept>`` wires sliders to the plotting functions.

Imports flow one way: compute <- plots <- widgets.  The only global state is set by
:func:`setup_notebook`, called once at the top of every notebook.

The package holds only what the notebooks import; the maintainer tooling (notebook
execution, handouts, the student edition) lives in the repository's ``tools/`` folder.
"""

from __future__ import annotations

from helpers.setup import setup_notebook

__version__ = "0.1.0"

__all__ = ["__version__", "setup_notebook"]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where JupyterLab finds the course's prebuilt extension (see ``labextension/README.md``).

    Used by ``jupyter labextension develop --overwrite .`` after an editable install (a
    regular ``pip install .`` copies the extension through the wheel's data files instead).
    """
    from pathlib import Path

    prebuilt = Path(__file__).resolve().parent.parent / "labextension" / "prebuilt"
    return [{"src": str(prebuilt), "dest": "@init-norm-course/rise-widgets-bridge"}]
