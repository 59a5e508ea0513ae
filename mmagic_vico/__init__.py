"""mmagic_vico: personalized text-to-image generation (ViCo and its peers) as an OpenMMLab plugin."""
__version__ = '0.1.0'
