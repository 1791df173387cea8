"""Hydra discovers plugins only under the ``hydra_plugins`` namespace; this is vaelab's."""
