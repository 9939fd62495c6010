"""gitopskit: GitOps with cdk8s charts in Python, GitLab and Flux.

The library behind the invoke tasks in ``tasks.py``: ``synth`` (charts → validated YAML),
``diff`` (what would change), ``publish`` (manifests repository and one merge request) and
``flux`` (bootstrap and key rotation). Every expected failure is a
:class:`~gitopskit.errors.GitopskitError`.
"""

from gitopskit.errors import GitopskitError

__version__ = "0.1.0"
__all__ = ["GitopskitError", "__version__"]
