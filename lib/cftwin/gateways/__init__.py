"""AI Gateway control plane: gateways and their BYOK provider configs (``models`` / ``responses``)."""
