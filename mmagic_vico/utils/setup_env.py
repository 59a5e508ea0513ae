import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every module that registers into the ``mmagic_vico`` scope.

    With ``init_default_scope`` the default scope becomes ``mmagic_vico`` (as mmagic's own
    ``register_all_modules`` does), so ``MODELS.build(dict(type='ViCo', ...))`` finds our classes.
    """
    import mmagic_vico.datasets  # noqa: F401
    import mmagic_vico.engine  # noqa: F401
    import mmagic_vico.models  # noqa: F401

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None or not DefaultScope.check_instance_created('mmagic_vico'):
        DefaultScope.get_instance('mmagic_vico', scope_name='mmagic_vico')
    elif current.scope_name != 'mmagic_vico':
        warnings.warn(f'The current default scope "{current.scope_name}" is not "mmagic_vico"; '
                      'a new default scope "mmagic_vico" is created for this run.')
        DefaultScope.get_instance(f'mmagic_vico-{datetime.datetime.now()}', scope_name='mmagic_vico')
