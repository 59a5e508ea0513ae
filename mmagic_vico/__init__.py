"""mmagic_vico: personalized text-to-image generation (ViCo and its peers) as an OpenMMLab plugin."""
__version__ = '0.1.0'

from .utils.logging import drop_dependency_noise as _drop_dependency_noise  # noqa: E402

_drop_dependency_noise()  # messages that do not apply here come while modules load, before any tool's main
